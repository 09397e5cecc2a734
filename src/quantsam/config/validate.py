"""Config validation: list every bad key and value, with its fix, before any data is read.

Three layers, all collected into one :class:`~quantsam.errors.ConfigError`: unknown keys (with "did you mean") and
wrong types per group schema; the optimizer's values checked by building it on a dummy parameter (so config and code
cannot drift); and value rules — each key's range or choices from its :class:`~quantsam.config.schema.Fact` in the
schema (written once, beside its default), plus the cross-field and structured rules below.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable
from typing import Any

import pandas as pd
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from quantsam.config.schema import DATA_SOURCES, GROUP_SCHEMAS, KLINE_FIELDS, STYLES, UNIVERSES, facts_of
from quantsam.errors import ConfigError

__all__ = ["DATA_SOURCES", "UNIVERSES", "validate"]
#: tracking URI schemes MLflow serves (the plain file store is rejected by current MLflow)
TRACKING_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks")


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


def _num(v: Any) -> float:
    """A finite number, else raise (so the rule fails)."""
    x = float(v)
    if not math.isfinite(x):
        raise ValueError(v)
    return x


def _int_at_least(v: Any, lo: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo


def _ints_or_null(v: Any, lo: int = 0, hi: int | None = None) -> bool:
    if v is None:
        return True
    items = _plain(v)
    return (isinstance(items, list) and len(items) > 0
            and all(_int_at_least(i, lo) and (hi is None or i < hi) for i in items))


def _tracking_uri_ok(uri: Any) -> bool:
    scheme = str(uri).split("://", 1)[0] if "://" in str(uri) else ""
    return scheme in TRACKING_SCHEMES or scheme.startswith(tuple(f"{s}+" for s in TRACKING_SCHEMES))


#: solvers that every cvxpy install brings (its own dependencies): checked without importing cvxpy (~2 s)
CVXPY_BUNDLED_SOLVERS = ("CLARABEL", "HIGHS", "OSQP", "SCIPY", "SCS")


def _solver_ok(name: Any, allow_null: bool = False) -> bool:
    if name is None or name == "":
        return allow_null
    if str(name).upper() in CVXPY_BUNDLED_SOLVERS:
        return True
    import cvxpy as cp

    return str(name).upper() in cp.installed_solvers()


def _solvers() -> str:
    import cvxpy as cp

    return "|".join(cp.installed_solvers())


def _rules(cfg: DictConfig) -> list[tuple[str, Callable[[], bool], str | Callable[[], str]]]:
    """(key, predicate, fix) triples; a failing (or raising) predicate is one problem. A fix may be a callable
    (evaluated only when needed)."""
    g = cfg.get
    d, f, m, t = g("data", {}), g("features", {}), g("model", {}), g("trainer", {})
    ft, pf, bt = g("factor_test", {}), g("portfolio", {}), g("backtest", {})
    tk, sg = g("tracking", {}), g("signal", {})
    freqs = list(m.get("frequencies", []) or [])
    return [
        ("seed", lambda: _int_at_least(g("seed"), 0), "an integer >= 0"),
        # cross-field and structured rules; every single-key rule comes from the schema's facts (_fact_rules)
        ("data.start", lambda: d.get("end") is None or d.get("start") is None
         or pd.Timestamp(str(d.get("start"))) < pd.Timestamp(str(d.get("end"))), "a date before data.end"),
        ("data.path", lambda: d.get("source") not in ("tidy", "qlib") or bool(d.get("path")),
         "the folder with your data when data.source is tidy or qlib"),
        ("features.fields", lambda: set(f.get("fields", [])) <= set(KLINE_FIELDS) and len(f.get("fields", [])) > 0,
         f"a non-empty subset of {list(KLINE_FIELDS)}"),
        ("model.input_size", lambda: int(m.get("input_size", 0)) == len(f.get("fields", [])),
         f"equal to the number of features.fields ({len(f.get('fields', []))})"),
        ("model.frequencies", lambda: len(freqs) > 0 and set(freqs) <= {"daily", "weekly"},
         "a non-empty subset of [daily, weekly]"),
        ("trainer.windows", lambda: _ints_or_null(t.get("windows")),
         "null (all) or a non-empty list of window indices >= 0, e.g. [3]"),
        ("trainer.models", lambda: t.get("models") is None or (len(t.get("models")) > 0
                                                                and set(t.get("models")) <= set(freqs)),
         f"null (all) or a non-empty subset of model.frequencies {freqs}"),
        ("trainer.seeds", lambda: _ints_or_null(t.get("seeds"), 0, int(t.get("n_seeds"))),
         "null (all) or a non-empty list of seed indices in [0, trainer.n_seeds)"),
        ("trainer.purge_days", lambda: int(t.get("purge_days")) >= int(f.get("label_horizon", 0)),
         "at least features.label_horizon, so train labels never overlap validation/test"),
        ("trainer.train_days", lambda: int(t.get("train_days")) > int(t.get("purge_days")) + 20,
         "well above trainer.purge_days"),
        ("trainer.valid_days", lambda: int(t.get("valid_days")) > int(t.get("purge_days")) + 5,
         "above trainer.purge_days"),
        ("trainer.device", lambda: str(t.get("device")) in ("auto", "cpu", "cuda")
         or str(t.get("device")).startswith("cuda:"), "auto, cpu, cuda or cuda:N"),
        ("signal.models", lambda: len(sg.get("models", [])) > 0 and set(sg.get("models")) <= set(freqs),
         f"a non-empty subset of model.frequencies {freqs}"),
        ("factor_test.neutralize", lambda: set(ft.get("neutralize", [])) <= {"industry", "size"},
         "a subset of [industry, size]"),
        ("factor_test.ic_decay_horizons", lambda: all(_int_at_least(h, 1) for h in ft.get("ic_decay_horizons", [])),
         "a list of integers >= 1"),
        ("portfolio.style_bounds", lambda: set(_plain(pf.get("style_bounds")) or {}) <= set(STYLES)
         and all(_num(v) > 0 for v in (_plain(pf.get("style_bounds")) or {}).values()),
         f"a mapping of style -> bound > 0 over {list(STYLES)}, e.g. {{beta: 0.2}}"),
        ("portfolio.objective", lambda: pf.get("objective", "score") != "alpha" or pf.get("te_target") is not None,
         "score, or alpha together with portfolio.te_target (the alphas use the risk model's specific volatility), "
         "e.g. portfolio=cost_aware"),
        ("portfolio.solver", lambda: _solver_ok(pf.get("solver")),
         lambda: f"a solver installed for cvxpy: {_solvers()}"),
        ("portfolio.fallback_solver", lambda: _solver_ok(pf.get("fallback_solver"), allow_null=True),
         lambda: f"null or a solver installed for cvxpy: {_solvers()}"),
        ("backtest.universes", lambda: len(bt.get("universes", [])) > 0
         and set(bt.get("universes")) <= set(UNIVERSES) - {"all"}, "a non-empty subset of [csi300, csi500, csi1000]"),
        ("tracking.uri", lambda: not tk.get("enabled") or _tracking_uri_ok(tk.get("uri")),
         f"a URI MLflow serves: {'|'.join(TRACKING_SCHEMES)}://... (e.g. sqlite:///mlruns.db or "
         "http://127.0.0.1:5000)"),
    ]


def _fact_rules(cfg: DictConfig) -> list[tuple[str, Callable[[], bool], str]]:
    """One rule per schema field that carries a :class:`~quantsam.config.schema.Fact` (its range or choices)."""
    out = []
    for group, schema in GROUP_SCHEMAS.items():
        node = cfg.get(group, {}) or {}
        for name, fact in facts_of(schema).items():
            if not fact.constrains:
                continue  # a fact about the key (e.g. result=False), not about its values
            out.append((f"{group}.{name}", lambda n=node, k=name, fa=fact: fa.ok(_plain(n.get(k))), fact.describe()))
    return out


def _check_optimizer(node: Any, problems: list[str]) -> None:
    import torch

    from quantsam.optim import build_optimizer, config_kwargs, list_optimizers, optimizer_kwargs

    if not isinstance(node, DictConfig) or "name" not in node:
        problems.append(f"optimizer: needs a 'name' key; pick a choice with optimizer=<name>, one of {list_optimizers()}")
        return
    name = str(node["name"])
    if name not in list_optimizers():
        problems.append(f"optimizer.name='{name}': unknown optimizer{_suggest(name, list_optimizers())}. "
                        f"Valid names: {list_optimizers()} (choose with optimizer=<name>)")
        return
    kwargs = {k: _plain(v) for k, v in node.items() if k != "name"}
    valid = config_kwargs(name)
    for k in sorted(set(kwargs) - set(valid)):
        hint = " — gradient clipping is trainer.grad_clip" if k == "grad_clip" else _suggest(k, valid)
        problems.append(f"optimizer.{k}: not an argument of '{name}'{hint}. Valid: {valid}")
    kwargs = {k: v for k, v in kwargs.items() if k in valid}
    arm, match = kwargs.get("arm"), kwargs.get("match_passes")
    if arm is not None and (not isinstance(arm, str) or not arm or "/" in arm or "," in arm):
        problems.append(f"optimizer.arm={arm!r}: the arm's name must be a non-empty string without '/' or ','")
    if match is not None and (isinstance(match, bool) or not isinstance(match, int | float) or not match >= 1):
        problems.append(f"optimizer.match_passes={match!r}: must be a number >= 1 (gradient evaluations per step of "
                        "the arm whose budget is matched, e.g. 2 for the SAM family) or null")
    kwargs = optimizer_kwargs({"name": name, **kwargs})
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
    for key, ok, fix in [*_fact_rules(cfg), *_rules(cfg)]:
        if (key.split(".")[0] not in wanted and key != "seed") or key in flagged:
            continue
        try:
            good = bool(ok())
        except (TypeError, ValueError, AttributeError, KeyError, OmegaConfBaseException):
            good = False
        if not good:
            problems.append(f"{key}={_plain(OmegaConf.select(cfg, key))!r}: must be {fix() if callable(fix) else fix}")
            flagged.add(key)
    if groups is None:
        problems += path_problems(cfg)
    if problems:
        raise ConfigError(problems)


def path_problems(cfg: DictConfig) -> list[str]:
    """``paths.runs`` / ``paths.data`` must be (or be creatable as) writable folders
    (:func:`quantsam.config.resolvers.writable_dir`, the rule Hydra's run/sweep dirs are checked with)."""
    from quantsam.config.resolvers import writable_dir

    out = []
    for key in ("paths.runs", "paths.data"):
        try:
            value = OmegaConf.select(cfg, key)
        except OmegaConfBaseException:
            continue
        if value is None:
            continue
        try:
            writable_dir(value, key)
        except ValueError as e:
            out.append(str(e))
    return out
