"""The training stage's cache-key policy: which config facts change a training's numbers.

The key hashes the config groups that change the numbers (:data:`TRAIN_GROUPS`) without the keys the schema marks
``result=False`` (threads, workers, progress, which units a job trains: :func:`~quantsam.config.schema.non_result_keys`)
and without the keys added after work was done while they sit at their default (``key_if_set``), plus the data
fingerprint and :data:`TRAIN_VERSION`. The universe's index only picks the backtest benchmark unless training is on
its members, so one training serves every index. The signal stage keys its own config.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from quantsam import stageio
from quantsam.config.schema import key_if_set, non_result_keys

#: bump when training's outputs change for the same config and data
TRAIN_VERSION = 3  # 2: predictions in chunks of loop.PREDICT_CHUNK names; the signal config left the key; 3: the fused
#                    CPU GRU backward (model.gru_impl=fused: the same function, other float rounding)
#: config groups whose values change the training stage's numbers (the signal stage keys its own config)
TRAIN_GROUPS = ("seed", "universe", "features", "model", "optimizer", "trainer")
#: trainer keys that change no number (or only select which units this job trains): ``result=False`` in the schema
NON_RESULT_TRAINER = non_result_keys("trainer")
#: (group, key, default): part of the stage key only when not at the default (added after work was done) — the
#: optimizer's arm keys, and the schema keys marked ``key_if_set``
KEY_IF_SET = (("optimizer", "arm", None), ("optimizer", "match_passes", None),
              *((g, k, v) for g in ("trainer", "features") for k, v in key_if_set(g)))


def train_config(cfg: DictConfig) -> dict:
    """The config subtrees that change the training stage's numbers (see :data:`NON_RESULT_TRAINER`)."""
    full = OmegaConf.to_container(cfg, resolve=True)
    c = {k: full[k] for k in TRAIN_GROUPS if k in full}
    u = c.get("universe")
    if isinstance(u, dict) and not u.get("train_on_members"):
        # the index only selects the backtest benchmark: training on all A-shares is the same run for every index
        u.pop("name", None)
        u.pop("index_code", None)
    for k in NON_RESULT_TRAINER:
        c.get("trainer", {}).pop(k, None)
    # keys added later enter the key only when set away from their default, so finished work stays valid
    for group, key, default in KEY_IF_SET:
        if isinstance(c.get(group), dict) and c[group].get(key, default) == default:
            c[group].pop(key, None)
    return c


def train_key(cfg: DictConfig, data_fingerprint: str) -> str:
    return stageio.stage_key("train", TRAIN_VERSION, config=train_config(cfg), data=data_fingerprint)


