"""Fixtures shared by the integration tests: a real ``mlflow server`` on 127.0.0.1 (free port), stopped at the end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from quantsam.tracking.snapshot import free_port, stop, wait_healthy


@pytest.fixture
def server(tmp_path):
    """(URI, server directory) of an MLflow server with a SQLite store and proxied artifacts under tmp_path."""
    port = free_port()
    srv_dir = tmp_path / "server"
    srv_dir.mkdir()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri",
                             f"sqlite:///{srv_dir}/mlruns.db", "--artifacts-destination", str(srv_dir / "art"),
                             "--serve-artifacts", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, 120, "mlflow server")
        yield f"http://127.0.0.1:{port}", srv_dir
    finally:
        stop(proc)
