"""One writer at a time: a lock file in the work folder, held for the whole nightly run.

A second run stops at once with a clear message. A lock left by a run that was killed (its process
no longer exists on this machine) is stale: the next run removes it and goes on.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import RunLockedError

__all__ = ["run_lock", "LOCK_NAME"]

LOCK_NAME = ".aidleads.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@contextmanager
def run_lock(work_dir: Path) -> Iterator[Path]:
    """Hold the work folder's run lock; raises RunLockedError if a live run holds it."""
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / LOCK_NAME
    me = {"pid": os.getpid(), "host": socket.gethostname(),
          "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            holder = _holder(path)
            if holder and (holder.get("host") != me["host"] or _alive(int(holder.get("pid", 0)))):
                raise RunLockedError(
                    f"another aidleads run holds {path} (pid {holder.get('pid')} on {holder.get('host')}, "
                    f"started {holder.get('started')})",
                    hint="wait for it to finish; if that process is gone, delete the lock file") from None
            path.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(me, fh)
        break
    else:
        raise RunLockedError(f"could not take the run lock {path}", hint="delete the lock file if no run is active")
    try:
        yield path
    finally:
        if (_holder(path) or {}).get("pid") == me["pid"]:
            path.unlink(missing_ok=True)
