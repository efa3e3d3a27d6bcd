"""`aidleads serve`: the nightly flow as a Prefect deployment on the configured cron, served until stopped.

The deployment is upserted by name (flow `aidleads-nightly`, deployment `[schedule].deployment_name`), so
restarting `serve` replaces its schedule instead of adding a second deployment. Its only parameter is
the absolute config path. Serving needs a running Prefect server: without one, Prefect would quietly
start a throwaway server whose schedule dies with the process, so this refuses instead.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pipeline.errors import AidLeadsError, ConfigError
from schemas.config import AidLeadsConfig, load_config

__all__ = ["FLOW_NAME", "require_server", "nightly_schedule", "serve_nightly"]

FLOW_NAME = "aidleads-nightly"
_START_SERVER = ("start one with `prefect server start` (UI and API on http://127.0.0.1:4200) and "
                 "`export PREFECT_API_URL=http://127.0.0.1:4200/api`; see README 'Operations'")


def require_server(timeout: float = 5.0) -> str:
    """The Prefect API URL, once its server answers /health; a one-line error otherwise."""
    import httpx
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise AidLeadsError("PREFECT_API_URL is not set, so there is no Prefect server to register the schedule with",
                            hint=_START_SERVER)
    url = url.rstrip("/")
    try:
        response = httpx.get(f"{url}/health", timeout=timeout)
    except httpx.HTTPError as exc:
        raise AidLeadsError(f"no Prefect server answers at PREFECT_API_URL={url} ({type(exc).__name__})",
                            hint=_START_SERVER) from None
    if response.status_code in (401, 403):  # a server that wants the API key Prefect's client will send
        return url
    if response.status_code != 200:
        hint = ("the URL should end in /api, e.g. http://127.0.0.1:4200/api" if not url.endswith("/api")
                else _START_SERVER)
        raise AidLeadsError(f"PREFECT_API_URL={url} is not a Prefect API (HTTP {response.status_code} at /health)",
                            hint=hint)
    return url


def nightly_schedule(config: AidLeadsConfig) -> Any:
    """The `[schedule]` cron line in its timezone, as a Prefect schedule (Prefect validates it once more)."""
    from prefect.schedules import Cron

    try:
        return Cron(config.schedule.cron, timezone=config.schedule.timezone)
    except ValueError as exc:
        raise ConfigError(f"schedule.cron: Prefect rejects '{config.schedule.cron}' ({str(exc).splitlines()[0]})",
                          hint="use five fields, e.g. '0 2 * * *'") from None


def serve_nightly(config_file: Path) -> None:
    """Register (or update) the scheduled deployment, then run its flow runs here until stopped."""
    import os
    import signal
    import threading
    import warnings

    from prefect.types.entrypoint import EntrypointType

    from flows.nightly import nightly_flow

    config_path = Path(config_file).resolve()
    config = load_config(config_path)
    api = require_server()
    schedule = nightly_schedule(config)
    name = config.schedule.deployment_name
    print(f"serving '{FLOW_NAME}/{name}' from {api}: cron '{config.schedule.cron}' in {config.schedule.timezone}; "
          f"run now with: prefect deployment run '{FLOW_NAME}/{name}'", file=sys.stderr, flush=True)
    # Prefect 3.8's SIGTERM handler calls the async stop() without awaiting it: harmless, but noisy in the journal
    warnings.filterwarnings("ignore", message="coroutine 'Runner.astop' was never awaited", category=RuntimeWarning)
    if threading.current_thread() is threading.main_thread():
        # Prefect 3.8's runner hangs on Ctrl-C (SIGINT) but stops cleanly on SIGTERM: make Ctrl-C a SIGTERM
        signal.signal(signal.SIGINT, lambda *_: os.kill(os.getpid(), signal.SIGTERM))
    nightly_flow.serve(
        name=name,
        schedule=schedule,
        parameters={"config_file": str(config_path)},  # a path only: parameters are stored in Prefect's database
        description="司法救助线索发现: nightly ingest → normalise → resolve → score → export (counts-only artifacts)",
        tags=["aidleads"],
        pause_on_shutdown=False,  # stopping serve (a restart, an upgrade) must not pause the schedule
        limit=1,  # one night at a time (the run lock would refuse a second one anyway)
        print_starting_message=False,
        entrypoint_type=EntrypointType.MODULE_PATH,  # importable from the installed package, whatever the cwd
    )
