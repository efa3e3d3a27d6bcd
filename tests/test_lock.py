"""One writer: a second run stops at once; a lock left by a killed run does not block forever."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from pipeline.errors import RunLockedError
from pipeline.lock import LOCK_NAME, run_lock


def test_second_run_stops_with_a_clear_message(tmp_path):
    with run_lock(tmp_path):
        with pytest.raises(RunLockedError, match="another aidleads run holds"):
            with run_lock(tmp_path):
                pass
    assert not (tmp_path / LOCK_NAME).exists()


def test_stale_lock_of_a_killed_run_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": "x"}))
    with run_lock(tmp_path) as path:
        assert json.loads(path.read_text())["pid"] != dead.pid
    assert not (tmp_path / LOCK_NAME).exists()


def test_lock_held_from_another_host_is_respected(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "other-server", "started": "x"}))
    with pytest.raises(RunLockedError, match="other-server"):
        with run_lock(tmp_path):
            pass
