"""Composing the Hydra config tree: every choice of every group composes and validates; bad values are listed."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantsam.config import compose, validate
from quantsam.errors import ConfigError
from quantsam.paths import config_dir

GROUPS = ["data", "universe", "features", "model", "optimizer", "trainer", "signal", "factor_test", "portfolio",
          "backtest", "tracking", "experiment"]


def test_every_group_folder_exists():
    for g in [*GROUPS, "launcher"]:
        assert list((config_dir() / g).glob("*.yaml")), g


@pytest.mark.parametrize("override", [
    f"{g}={p.stem}" for g in GROUPS for p in sorted((Path(__file__).parents[2] / "conf" / g).glob("*.yaml"))
])
def test_each_choice_composes_and_validates(override):
    cfg = compose([override])
    validate(cfg)


@pytest.mark.parametrize("name", ["adamw", "sam", "asam", "gsam", "gam", "fsam", "wsam", "looksam", "esam", "mesa",
                                  "rst", "csam", "adamw_matched"])
def test_optimizer_choice_builds(name):
    import torch

    from quantsam.optim import arm_name, build_optimizer, epoch_scale, optimizer_kwargs

    cfg = compose([f"optimizer={name}"])
    validate(cfg)
    opt = build_optimizer(cfg.optimizer.name, [torch.nn.Parameter(torch.zeros(2))], **optimizer_kwargs(cfg.optimizer))
    assert type(opt).__name__.lower() == name.removesuffix("_matched")
    assert arm_name(cfg.optimizer) == name
    assert epoch_scale(cfg.optimizer) == (2.0 if name == "adamw_matched" else 1.0)


@pytest.mark.parametrize("override,match", [("optimizer.match_passes=0.5", "match_passes"),
                                            ("optimizer.arm=a/b", "optimizer.arm")])
def test_arm_keys_are_checked(override, match):
    with pytest.raises(ConfigError, match=match):
        validate(compose(["optimizer=adamw_matched", override]))


def test_all_problems_listed_with_fixes():
    cfg = compose(["optimizer=wsam", "optimizer.gamma=1.5", "model.hidden_size=abc", "+trainer.epochs=3",
                   "trainer.loss=hinge", "model.input_size=5"])
    with pytest.raises(ConfigError) as ei:
        validate(cfg)
    msg = str(ei.value)
    assert "gamma=1.5" in msg and "[0.0, 1.0)" in msg
    assert "model.hidden_size='abc'" in msg and "int" in msg
    assert "trainer.epochs" in msg and "max_epochs" in msg
    assert "trainer.loss='hinge'" in msg and "ic or mse" in msg
    assert "model.input_size=5" in msg
    assert len(ei.value.problems) == 5


def test_unknown_optimizer_name_lists_valid_names():
    cfg = compose(["optimizer.name=adam"])
    names = r"\['adamw', 'sam', 'asam', 'gsam', 'gam', 'fsam', 'wsam', 'looksam', 'esam', 'mesa', 'rst', 'csam'\]"
    with pytest.raises(ConfigError, match="Valid names: " + names):
        validate(cfg)


def test_launchers_compose():
    from hydra import compose as hc
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        for launcher, target in [("basic", "BasicLauncher"), ("joblib", "JoblibLauncher")]:
            cfg = hc("config", overrides=[f"launcher={launcher}"], return_hydra_config=True)
            assert target in cfg.hydra.launcher._target_
