"""A dead or wrong tracking server is a clear ConfigError at once (issue 21: it used to be 260 s of client retries
per job after the data stage, then raw tracebacks)."""

from __future__ import annotations

import http.server
import threading
import time

import pytest
from omegaconf import OmegaConf

from quantsam.errors import ConfigError
from quantsam.tracking.mlflow_run import Tracker
from quantsam.tracking.snapshot import free_port


def tracker(uri: str) -> Tracker:
    return Tracker(OmegaConf.create({"enabled": True, "uri": uri, "artifact_root": None, "experiment": "x"}))


def test_nothing_listening_fails_fast_with_the_fix():
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=r"tracking.uri=http://127.0.0.1:\d+: no MLflow server answers.*mlflow-server"):
        tracker(f"http://127.0.0.1:{free_port()}").check()
    assert time.perf_counter() - t0 < 10


def test_a_server_that_is_not_mlflow_is_named():
    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", free_port()), NotFound)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        with pytest.raises(ConfigError, match="answers GET /health with 404: not an MLflow tracking server"):
            tracker(f"http://127.0.0.1:{srv.server_port}").check()
    finally:
        srv.shutdown()
        srv.server_close()


def test_check_runs_the_same_probe_as_train(tmp_path):
    """``check`` says what ``train`` would do (issue 31): with no server behind ``tracking.uri`` it fails with the
    probe's message instead of printing "config OK ... every stage would accept it"."""
    from tests.cli import quantsam

    uri = f"http://127.0.0.1:{free_port()}"
    proc = quantsam("check", "tracking=server", f"tracking.uri={uri}", f"paths.runs={tmp_path}/out",
                    f"paths.data={tmp_path}/data", timeout=300)
    assert proc.returncode != 0 and "config OK" not in proc.stdout
    assert f"tracking.uri={uri}: no MLflow server answers" in proc.stderr and "Fix: start one" in proc.stderr, \
        proc.stderr[-2000:]
