"""Config validation: list every bad key and value, with its fix, before any heavy work starts."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from quantsam.config.schema import GROUP_SCHEMAS
from quantsam.errors import ConfigError

KLINE_FIELDS = ("open", "high", "low", "close", "vwap", "volume")
UNIVERSES = ("all", "csi300", "csi500", "csi1000")
DATA_SOURCES = ("synthetic", "dir", "tidy", "qlib")


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig | ListConfig) else node


def _check_schema(group: str, node: Any, schema: type, problems: list[str]) -> None:
    names = [f.name for f in dataclasses.fields(schema)]
    if not isinstance(node, DictConfig):
        problems.append(f"{group}: expected a mapping, got {node!r}. Fix: pick a choice, e.g. `{group}=<name>` "
                        f"with a file in conf/{group}/")
        return
    base = OmegaConf.structured(schema)
    for key in node:
        if key not in names:
            problems.append(f"{group}.{key}: unknown key{_suggest(str(key), names)}. Valid keys: {names}")
            continue
        try:
            base[key] = _plain(node[key])
        except OmegaConfBaseException as e:
            ftype = next(f.type for f in dataclasses.fields(schema) if f.name == key)
            problems.append(f"{group}.{key}={_plain(node[key])!r}: wrong type ({type(e).__name__}); expected {ftype}")


def _rules(cfg: DictConfig) -> list[tuple[str, Callable[[], bool], str]]:
    """(key, predicate, fix) triples; a failing predicate is one problem."""
    g = cfg.get
    d, f, m, t = g("data", {}), g("features", {}), g("model", {}), g("trainer", {})
    ft, pf, bt, u = g("factor_test", {}), g("portfolio", {}), g("backtest", {}), g("universe", {})
    return [
        ("seed", lambda: isinstance(g("seed"), int) and g("seed") >= 0, "an integer >= 0"),
        ("data.source", lambda: d.get("source") in DATA_SOURCES, f"one of {list(DATA_SOURCES)}"),
        ("data.n_stocks", lambda: int(d.get("n_stocks", 20)) >= 20, "at least 20"),
        ("data.start", lambda: d.get("end") is None or d.get("start") is None
         or str(d.get("start")) < str(d.get("end")), "start before data.end"),
        ("data.path", lambda: d.get("source") not in ("tidy", "qlib") or bool(d.get("path")),
         "the folder with your data when data.source is tidy or qlib"),
        ("universe.name", lambda: u.get("name") in UNIVERSES, f"one of {list(UNIVERSES)}"),
        ("features.fields", lambda: set(f.get("fields", [])) <= set(KLINE_FIELDS) and len(f.get("fields", [])) > 0,
         f"a non-empty subset of {list(KLINE_FIELDS)}"),
        ("features.daily_window", lambda: int(f.get("daily_window", 2)) >= 2, "an integer >= 2"),
        ("features.weekly_window", lambda: int(f.get("weekly_window", 2)) >= 2, "an integer >= 2"),
        ("features.label_horizon", lambda: int(f.get("label_horizon", 1)) >= 1, "an integer >= 1"),
        ("features.label_price", lambda: f.get("label_price") in ("close", "vwap"), "close or vwap"),
        ("model.input_size", lambda: int(m.get("input_size", 0)) == len(f.get("fields", [])),
         f"equal to the number of features.fields ({len(f.get('fields', []))})"),
        ("model.hidden_size", lambda: int(m.get("hidden_size", 1)) >= 1, "an integer >= 1"),
        ("model.num_layers", lambda: int(m.get("num_layers", 1)) >= 1, "an integer >= 1"),
        ("model.dropout", lambda: 0.0 <= float(m.get("dropout", 0.0)) < 1.0, "in [0, 1)"),
        ("model.frequencies", lambda: len(m.get("frequencies", [])) > 0
         and set(m.get("frequencies", [])) <= {"daily", "weekly"}, "a non-empty subset of [daily, weekly]"),
        ("trainer.loss", lambda: t.get("loss") in ("ic", "mse"), "ic or mse"),
        ("trainer.max_epochs", lambda: int(t.get("max_epochs", 1)) >= 1, "an integer >= 1"),
        ("trainer.patience", lambda: int(t.get("patience", 1)) >= 1, "an integer >= 1"),
        ("trainer.sample_every", lambda: int(t.get("sample_every", 1)) >= 1, "an integer >= 1"),
        ("trainer.n_seeds", lambda: int(t.get("n_seeds", 1)) >= 1, "an integer >= 1"),
        ("trainer.purge_days", lambda: int(t.get("purge_days", 0)) >= int(f.get("label_horizon", 0)),
         "at least features.label_horizon, so train labels never overlap validation/test"),
        ("trainer.train_days", lambda: int(t.get("train_days", 0)) > int(t.get("purge_days", 0)) + 20,
         "well above trainer.purge_days"),
        ("trainer.valid_days", lambda: int(t.get("valid_days", 0)) > int(t.get("purge_days", 0)) + 5,
         "above trainer.purge_days"),
        ("trainer.test_days", lambda: int(t.get("test_days", 0)) >= 1, "an integer >= 1"),
        ("trainer.device", lambda: str(t.get("device")) in ("auto", "cpu", "cuda") or str(t.get("device")).startswith("cuda:"),
         "auto, cpu, cuda or cuda:N"),
        ("trainer.progress", lambda: t.get("progress") in ("auto", True, False), "auto, true or false"),
        ("trainer.save_trajectory", lambda: t.get("save_trajectory", "first") in ("first", "all", "none"),
         "first, all or none"),
        ("trainer.grad_clip", lambda: t.get("grad_clip") is None or float(t.get("grad_clip")) > 0, "null or > 0"),
        ("factor_test.price", lambda: ft.get("price") in ("vwap", "close"), "vwap or close"),
        ("factor_test.n_quantiles", lambda: int(ft.get("n_quantiles", 2)) >= 2, "an integer >= 2"),
        ("factor_test.mad_k", lambda: float(ft.get("mad_k", 1)) > 0, "> 0"),
        ("factor_test.neutralize", lambda: set(ft.get("neutralize", [])) <= {"industry", "size"},
         "a subset of [industry, size]"),
        ("portfolio.min_index_weight", lambda: 0.0 <= float(pf.get("min_index_weight", 0)) <= 1.0, "in [0, 1]"),
        ("portfolio.max_active", lambda: float(pf.get("max_active", 1)) > 0, "> 0"),
        ("portfolio.industry_tol", lambda: float(pf.get("industry_tol", 1)) > 0, "> 0"),
        ("portfolio.size_tol", lambda: float(pf.get("size_tol", 1)) > 0, "> 0"),
        ("portfolio.max_turnover", lambda: float(pf.get("max_turnover", 1)) > 0, "> 0"),
        ("backtest.cost_per_side", lambda: 0.0 <= float(bt.get("cost_per_side", 0)) <= 0.05, "in [0, 0.05]"),
        ("backtest.fill_price", lambda: bt.get("fill_price") in ("vwap", "close", "open"), "vwap, close or open"),
    ]


def _check_optimizer(node: Any, problems: list[str]) -> None:
    import torch

    from quantsam.optim import build_optimizer, list_optimizers, valid_kwargs

    if not isinstance(node, DictConfig) or "name" not in node:
        problems.append(f"optimizer: needs a 'name' key; pick a choice with optimizer=<name>, one of {list_optimizers()}")
        return
    name = str(node["name"])
    if name not in list_optimizers():
        problems.append(f"optimizer.name='{name}': unknown optimizer{_suggest(name, list_optimizers())}. "
                        f"Valid names: {list_optimizers()} (choose with optimizer=<name>)")
        return
    kwargs = {k: _plain(v) for k, v in node.items() if k != "name"}
    valid = valid_kwargs(name)
    for k in sorted(set(kwargs) - set(valid)):
        problems.append(f"optimizer.{k}: not an argument of '{name}'{_suggest(k, valid)}. Valid: {valid}")
    kwargs = {k: v for k, v in kwargs.items() if k in valid}
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    try:  # the optimizer's own checks, on a dummy parameter (cheap, and never out of sync with the code)
        build_optimizer(name, [torch.nn.Parameter(torch.zeros(1))], **kwargs)
    except (ValueError, TypeError) as e:
        problems.append(f"optimizer ({name}): {e}")


def validate(cfg: DictConfig, groups: tuple[str, ...] | None = None) -> None:
    """Raise :class:`ConfigError` listing every problem in ``cfg`` (all groups, or only ``groups``)."""
    problems: list[str] = []
    wanted = groups or (*GROUP_SCHEMAS, "optimizer")
    for group, schema in GROUP_SCHEMAS.items():
        if group not in wanted:
            continue
        if group not in cfg or cfg[group] is None:
            problems.append(f"{group}: missing. Fix: add `- {group}: <choice>` to the defaults list (choices in conf/{group}/)")
            continue
        _check_schema(group, cfg[group], schema, problems)
    if "optimizer" in wanted:
        _check_optimizer(cfg.get("optimizer"), problems)
    flagged = {p.split("=")[0].split(":")[0] for p in problems}
    for key, ok, fix in _rules(cfg):
        if (key.split(".")[0] not in wanted and key != "seed") or key in flagged:
            continue
        try:
            good = bool(ok())
        except (TypeError, ValueError, AttributeError):
            good = False
        if not good:
            problems.append(f"{key}={_plain(OmegaConf.select(cfg, key))!r}: must be {fix}")
    if problems:
        raise ConfigError(problems)
