"""A picture of an experiment's comparison view, taken the way a user sees it: a real ``mlflow ui`` (as
``make mlflow-ui`` starts it: one worker, no GenAI job runners) on a free 127.0.0.1 port, the link quantsam prints
(:func:`quantsam.tracking.ui.links`) loaded in headless Chromium, the server stopped after.

    python -m quantsam.tracking.snapshot sqlite:///mlruns.db real_arms docs/figures/real_arms_mlflow.png

prints the groups (optimizers) the page shows and writes the screenshot. Needs Chromium (Debian: ``apt-get install
chromium``); without it the command says so and exits 2. The same helpers drive the UI tests
(``tests/integration/test_mlflow_ui.py``).
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

USAGE = "python -m quantsam.tracking.snapshot <store uri> <experiment> <out.png>"


def browser() -> str | None:
    """The Chromium on this machine, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def mlflow_ui(uri: str, timeout: float = 120.0) -> Iterator[str]:
    """``make mlflow-ui``'s server on ``uri`` (one worker, no GenAI job runners) on a free 127.0.0.1 port; yields its
    base URL once ``/health`` answers; stopped on exit."""
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    ui = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "ui", "--backend-store-uri", uri,
                           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", ui, timeout, f"mlflow ui on {uri}")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(ui)


def wait_healthy(base: str, proc: subprocess.Popen, timeout: float, what: str) -> None:
    """Poll ``<base>/health`` once a second until it answers; a clear error when ``proc`` died or time ran out."""
    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{base}/health", timeout=2)
            return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with code {proc.returncode} before answering") from None
            if time.time() > deadline:
                raise RuntimeError(f"{what} did not answer within {timeout:.0f} s") from None
            time.sleep(1)


def stop(proc: subprocess.Popen) -> None:
    """Terminate a server process; kill it if it has not exited 30 s later."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium as a closed network needs it (no background connections), with a fresh profile under
    ``profile``; the page gets 25 s of virtual time to render."""
    exe = browser()
    if exe is None:
        raise RuntimeError("no Chromium on this machine (Debian: apt-get install chromium)")
    return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={profile}/chrome", "--virtual-time-budget=25000", *args],
                          capture_output=True, text=True, timeout=180)


def page_text(url: str, profile: Path, *args: str) -> str:
    """The rendered page's visible text (scripts and styles dropped, whitespace collapsed)."""
    dom = chromium(profile, *args, "--dump-dom", url).stdout
    text = re.sub(r"<(style|script).*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", text)))


def groups(text: str) -> list[str]:
    """The run groups (``Group: <optimizer>``) a comparison view's text shows, in page order."""
    return re.findall(r"Group: ([\w.-]+)", text)


def snapshot(uri: str, experiment: str, out: Path, size: str = "2600,800") -> list[str]:
    """Screenshot of ``experiment``'s comparison view on the store ``uri`` into ``out``; returns the groups shown."""
    from mlflow import MlflowClient

    from quantsam.tracking.mlflow_run import ui_link
    from quantsam.tracking.ui import prepare

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise SystemExit(f"no experiment '{experiment}' in {uri}")
    prepare(client, exp)  # as `make mlflow-ui` leaves it: the view tag written, older copies retired
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)  # an earlier picture must not pass for this one
    with tempfile.TemporaryDirectory() as tmp, mlflow_ui(uri) as base:
        link = ui_link(base, exp.experiment_id)
        shown = groups(page_text(link, Path(tmp), f"--window-size={size}"))
        chromium(Path(tmp), f"--window-size={size}", "--hide-scrollbars", f"--screenshot={out.resolve()}", link)
    if not out.exists():
        raise RuntimeError(f"Chromium wrote no screenshot to {out}")
    return shown


def main(argv: list[str] | None = None) -> int:
    a = list(sys.argv[1:] if argv is None else argv)
    if len(a) != 3:
        print(f"usage: {USAGE}", file=sys.stderr)
        return 2
    if browser() is None:
        print("no Chromium on this machine: apt-get install chromium (Debian), then run this again", file=sys.stderr)
        return 2
    shown = snapshot(a[0], a[1], Path(a[2]))
    print(f"{a[2]}: experiment '{a[1]}', groups shown: {', '.join(shown) or '(none)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
