"""The real study arm by arm, with its results written into the repository after each arm (issue 30).

    python scripts/real_study.py                       # experiment=real_arms: the seven arms, in its sweep's order
    python scripts/real_study.py --arms adamw,gsam     # some arms (the others keep what they have)
    make real-study                                    # the same as the first line, its log in logs/real_study.log
    make real-study ARGS=--commit                      # ... and git-commit docs/results/<name> after each arm

Each arm is one ``python -m quantsam pipeline --multirun experiment=<exp> optimizer=<arm>`` into its own sweep
folder (``multirun/<name>/<arm>``): train (resumable at the fit level: a killed run continues where it stopped),
signal, factor test and the CSI300/500/1000 backtests, each stage cached by content and code. When an arm ends,
``docs/results/<name>/`` is rewritten from every finished arm (``scripts/real_results.py`` over their sweep
folders) and ``arms.json`` records, per arm, the commit, the training code version and the version of the numerical
path (:data:`NUMERIC_CODE`) it was made with and its measured CPU and wall seconds. Running the script again reruns
only what changed: a finished arm whose code did not change is skipped (its record, seconds included, stays that of
the run that computed it). A cached
stage result is served even when the stage's code changed since (quantsam's caches key on inputs and warn on code),
so the script records each arm's signal / factor test / backtest code (:func:`downstream_stages`) and, when the code of
one of them differs from the arm's record, runs the arm with ``+rerun=[...]`` naming those stages: the committed
results of all arms then come from the same downstream code. Training served from the cache under changed training
code is logged with a warning, so ``numeric_code`` says whether every arm's fits share one numerical path.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the modules a fit's numbers are computed by (the model, the optimizers, the features, the loop and its loss):
#: arms with the same hash were trained on the same numerical path, whatever else in ``train`` (messages, locks,
#: error handling) changed between them
NUMERIC_CODE = ("models", "optim", "features", "crosssection", "train/loop", "train/losses", "train/runtime")


def downstream_stages() -> dict[str, tuple[str, ...]]:
    """The stages after training whose cached results an arm must recompute when their code changed: their +rerun
    name -> the modules their numbers depend on, as each stage declares them (``stageio.Stage``)."""
    from quantsam.backtest.stage import BACKTEST
    from quantsam.factor_test.stage import FACTOR_TEST
    from quantsam.signals.stage import SIGNAL

    return {st.name: tuple(st.code) for st in (SIGNAL, FACTOR_TEST, BACKTEST)}


def stale_stages(recorded: dict, current: dict) -> list[str]:
    """The downstream stages whose code version differs from the arm's record (all of them for an arm recorded
    before versions were kept)."""
    return [k for k in current if recorded.get(k) != current[k]]


def _git_sha() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "src", "conf"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return out.stdout.strip() + ("+dirty" if dirty else "")


def _arms_of(experiment: str) -> list[str]:
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(ROOT / "conf" / "experiment" / f"{experiment}.yaml")
    params = OmegaConf.select(cfg, "hydra.sweeper.params.optimizer")
    if params is None:
        raise SystemExit(f"conf/experiment/{experiment}.yaml has no hydra.sweeper.params.optimizer: pass --arms")
    return [a.strip() for a in str(params).split(",")]


def _unit_costs(sweep: Path) -> dict:
    """CPU and wall seconds of the arm's training units (their history files), summed."""
    res = sorted(sweep.glob("*/result.json"))
    if not res:
        return {}
    work = Path(json.loads(res[0].read_text())["work_dir"])
    hist = [json.loads(h.read_text()) for h in sorted((work / "history").glob("*.json"))]
    return {"units": len(hist), "train_cpu_s": round(sum(h.get("cpu_seconds", 0.0) for h in hist), 1),
            "predict_cpu_s": round(sum(h.get("predict_cpu_seconds", 0.0) for h in hist), 1),
            "train_wall_s": round(sum(h.get("seconds", 0.0) for h in hist), 1),
            "epochs": sum(len(h["history"]) for h in hist)}


def arm_plan(experiment: str, arm: str, overrides: list[str]) -> dict:
    """``python -m quantsam plan experiment=<experiment> optimizer=<arm>`` as it reads before any of the arm's fits
    exists (a fresh runs folder, so the expected epochs are the a-priori ``min(max_epochs, patience + 2)``, not the
    arm's own finished fits), calibrated at one torch thread as the study's workers run — recorded in ``arms.json``
    so the arm's measured CPU seconds can be checked against it. The load average at calibration is kept beside it
    (a busy machine reads slow)."""
    import tempfile

    from omegaconf import OmegaConf

    from quantsam.config import compose
    from quantsam.data.stage import run_data
    from quantsam.features.market import open_market
    from quantsam.train.plan import study_plan

    with tempfile.TemporaryDirectory() as runs:
        cfg = compose([f"experiment={experiment}", f"optimizer={arm}", f"paths.runs={runs}", *overrides])
        load = os.getloadavg()[0]
        (row,), info = study_plan(cfg, open_market(run_data(cfg)),
                                  {arm: OmegaConf.to_container(cfg.optimizer, resolve=True)}, 1, threads=1)
    return {"cpu_h": round(row.hours, 3), "cpu_h_max": round(row.hours_max, 3), "expected_epochs": info["expected_epochs"],
            "train_us_per_name_step": round(1e6 * row.calibration.cpu_per_sample, 1), "grad_evals": row.grad_evals,
            "load_avg_1min": round(load, 2), "made": time.strftime("%Y-%m-%d %H:%M:%S")}


def finished(record: dict | None) -> bool:
    """Whether an arm's record is that of a finished arm (a started one holds only the plan made at its first start)."""
    return bool(record) and "finished" in record


def arms_done(book: dict, arms: list[str], sweeps: Path) -> list[str]:
    """The finished arms (in study order) whose sweep folder under ``sweeps`` exists: what real_results.py reads."""
    return [x for x in arms if finished(book.get(x)) and (sweeps / x).exists()]


def up_to_date(record: dict | None, stale: list[str], train_code: str, sweep: Path) -> bool:
    """An arm finished on the current code (recorded, no stale downstream stage, the same training code, its sweep's
    job results present) is not run again: that would only serve caches, and its record would then carry the cache
    hits' seconds instead of those of the run that computed its results."""
    return finished(record) and not stale and record.get("train_code") == train_code and any(sweep.glob("*/result.json"))


def commit_results(root: Path, folder: Path, message: str) -> bool:
    """Commit ``folder`` (the study's results) and nothing else: ``git add`` it, then ``git commit -- <folder>``, which
    leaves whatever else is staged or changed in the work tree out of the commit. False when nothing changed."""
    rel = str(folder.resolve().relative_to(root.resolve()))
    subprocess.run(["git", "add", "--", rel], cwd=root, check=True)
    if subprocess.run(["git", "diff", "--cached", "--quiet", "--", rel], cwd=root).returncode == 0:
        return False
    subprocess.run(["git", "commit", "-q", "-m", message, "--", rel], cwd=root, check=True)
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default="real_arms")
    ap.add_argument("--name", default=None, help="docs/results/<name> and multirun/<name> (default: the experiment)")
    ap.add_argument("--arms", default=None, help="comma-separated arms (default: the experiment's sweep)")
    ap.add_argument("--commit", action="store_true", help="git-commit docs/results/<name> (only it) after each arm")
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides for every arm")
    a = ap.parse_args()
    name = a.name or a.experiment
    arms = a.arms.split(",") if a.arms else _arms_of(a.experiment)
    out = ROOT / "docs" / "results" / name
    out.mkdir(parents=True, exist_ok=True)
    book_path = out / "arms.json"
    book = json.loads(book_path.read_text()) if book_path.exists() else {}
    all_arms = _arms_of(a.experiment) if not a.arms else arms
    from quantsam import stageio
    from quantsam.train.stage import TRAIN_CODE

    version = stageio.code_version.__wrapped__  # the files as they are now (code_version is cached per process)
    for arm in arms:
        sweep = ROOT / "multirun" / name / arm
        downstream = {k: version(*mods) for k, mods in downstream_stages().items()}
        stale = stale_stages(book[arm].get("downstream_code", {}), downstream) if finished(book.get(arm)) else []
        if up_to_date(book.get(arm), stale, version(*TRAIN_CODE), sweep):
            print(f"== {arm}: up to date (finished {book[arm].get('finished')}, same code); skipped", flush=True)
            continue
        rerun = [f"+rerun=[{','.join(stale)}]"] if stale else []
        cmd = [sys.executable, "-m", "quantsam", "pipeline", "--multirun", f"experiment={a.experiment}",
               f"optimizer={arm}", f"hydra.sweep.dir={sweep}", "report.on_sweep_end=false", *rerun, *a.overrides]
        plan = book.get(arm, {}).get("plan") or arm_plan(a.experiment, arm, a.overrides)
        if arm not in book:  # the plan as it read at the arm's first start, kept across restarts of the study
            book[arm] = {"plan": plan}
            book_path.write_text(json.dumps(book, indent=1) + "\n")
        print(f"== {arm}: plan {plan['cpu_h']:.2f} CPU-h expected ({plan['cpu_h_max']:.2f} at max_epochs), "
              f"calibrated at load {plan['load_avg_1min']}", flush=True)
        print(f"== {arm}: {' '.join(cmd[1:])}", flush=True)
        sha = _git_sha()
        w0, c0 = time.perf_counter(), os.times()
        rc = subprocess.call(cmd, cwd=ROOT)
        if rc != 0:  # once more in a fresh process: it resumes at the fit level (e.g. code edited under a long run)
            print(f"== {arm}: the pipeline exited {rc}; resuming it once in a new process", flush=True)
            rc = subprocess.call(cmd, cwd=ROOT)
        c1 = os.times()
        if rc != 0:
            raise SystemExit(f"{arm}: the pipeline exited {rc} twice; see its log, then rerun this command to resume it")
        book[arm] = {"commit": sha, "train_code": version(*TRAIN_CODE), "numeric_code": version(*NUMERIC_CODE),
                     "downstream_code": downstream, "plan": plan,
                     "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
                     "this_run_wall_s": round(time.perf_counter() - w0, 1),
                     "this_run_cpu_s": round(c1.children_user + c1.children_system - c0.children_user
                                             - c0.children_system, 1),
                     **_unit_costs(sweep)}
        book_path.write_text(json.dumps(book, indent=1) + "\n")
        done = arms_done(book, all_arms, ROOT / "multirun" / name)
        rr = subprocess.call([sys.executable, str(ROOT / "scripts" / "real_results.py"),
                              *[str(ROOT / "multirun" / name / x) for x in done], "--name", name,
                              "--experiment", a.experiment], cwd=ROOT)
        if rr != 0:  # the arm's results are in its sweep folder; the study goes on to the next arm
            print(f"== {arm}: writing docs/results/{name}/ failed ({rr}); the next arm goes on — rerun "
                  f"scripts/real_results.py on {', '.join(done)} once it is fixed", flush=True)
        else:
            print(f"== {arm}: done; docs/results/{name}/ now has {', '.join(done)}", flush=True)
            b = book[arm]
            msg = (f"{name}: {arm} landed ({b.get('units')} fits, "
                   f"{(b.get('train_cpu_s', 0) + b.get('predict_cpu_s', 0)) / 3600:.2f} CPU-h vs plan "
                   f"{b['plan']['cpu_h']:.2f}; code {b['commit']}, numerical path {b['numeric_code']})")
            try:
                if a.commit and commit_results(ROOT, out, msg):
                    print(f"== {arm}: committed docs/results/{name}/", flush=True)
            except subprocess.CalledProcessError as e:  # e.g. another git command held the index: the study goes on
                print(f"== {arm}: git commit of docs/results/{name}/ failed ({e}); commit it by hand", flush=True)


if __name__ == "__main__":
    main()
