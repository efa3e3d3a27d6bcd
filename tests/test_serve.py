"""`aidleads serve` against a real Prefect server on loopback: the scheduled deployment, one run triggered
now, its leads and counts-only artifacts, and a restart of `serve` that keeps one deployment and its schedule.

The server starts once (module fixture). Set AIDLEADS_SCREENSHOTS=/some/dir to also screenshot the UI
with headless Chromium (scripts/screenshot_ui.py) while the server is up.
"""

from __future__ import annotations

import csv
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import openpyxl
import pytest

from pipeline.store import open_database

ROOT = Path(__file__).parent.parent
SAMPLE = ROOT / "data_samples" / "county"
BIN = Path(sys.executable).parent
FLOW = "aidleads-nightly"
DEPLOYMENT = "nightly"
CRON, TIMEZONE = "0 2 * * *", "Asia/Shanghai"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what: str, check: Callable[[], Any], timeout: float, every: float = 1.0, log: Path | None = None) -> Any:
    """Poll `check` until it returns something truthy; fail with the tail of `log` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except (httpx.HTTPError, OSError):
            value = None
        if value:
            return value
        time.sleep(every)
    tail = log.read_text(encoding="utf-8", errors="replace")[-3000:] if log and log.exists() else ""
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{tail}")


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("ab") as fh:
        return subprocess.Popen(args, env=env, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def _stop(proc: subprocess.Popen | None) -> None:
    """SIGTERM the process group, SIGKILL it if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """A real `prefect server start` on a free loopback port with its own PREFECT_HOME."""
    root = tmp_path_factory.mktemp("prefect-server")
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_LOGGING_LEVEL="WARNING",
               PREFECT_RESULTS_PERSIST_BY_DEFAULT="false")
    # PREFECT_API_URL also tells the UI where its API is (it would assume port 4200 otherwise)
    server_env = {**env, "PREFECT_HOME": str(root / "server-home"), "PREFECT_API_URL": api}
    client_env = {**env, "PREFECT_HOME": str(root / "client-home"), "PREFECT_API_URL": api}
    log = root / "server.log"
    proc = _start([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)], server_env, log)
    try:
        _wait("the Prefect server's /api/health", lambda: httpx.get(f"{api}/health", timeout=5).json() is True,
              timeout=240, log=log)
        yield {"api": api, "env": client_env, "root": root, "home": root / "server-home", "log": log}
    finally:
        _stop(proc)


def _demo_config(folder: Path) -> Path:
    """The config `aidleads demo` writes (bundled sample county), plus an explicit [schedule]."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (ROOT / "data_samples" / "demo.toml").read_text(encoding="utf-8").replace("@SAMPLE@", SAMPLE.as_posix())
    config = folder / "aidleads.toml"
    config.write_text(text + f'\n[schedule]\ncron = "{CRON}"\ntimezone = "{TIMEZONE}"\n'
                      f'deployment_name = "{DEPLOYMENT}"\n', encoding="utf-8")
    return config


def _deployment(client: Any) -> Any:
    from prefect.exceptions import ObjectNotFound

    try:
        return client.read_deployment_by_name(f"{FLOW}/{DEPLOYMENT}")
    except ObjectNotFound:
        return None


def _assert_scheduled(deployment: Any, config: Path) -> None:
    assert not deployment.paused
    assert len(deployment.schedules) == 1, deployment.schedules
    schedule = deployment.schedules[0]
    assert schedule.active and schedule.schedule.cron == CRON and schedule.schedule.timezone == TIMEZONE
    assert deployment.parameters == {"config_file": str(config.resolve())}


def _personal_data() -> tuple[set[str], set[str]]:
    """ID numbers and (3+ character) names of the people in the bundled sample's files."""
    with (SAMPLE / "truth" / "records.csv").open(encoding="utf-8") as fh:
        present = {r["person_id"] for r in csv.DictReader(fh)}
    with (SAMPLE / "truth" / "persons.csv").open(encoding="utf-8") as fh:
        people = [r for r in csv.DictReader(fh) if r["person_id"] in present]
    return {p["id18"] for p in people}, {p["name"] for p in people if len(p["name"]) >= 3}


def _personal_data_in(texts: list[str]) -> tuple[set[str], set[str]]:
    ids, names = _personal_data()
    found_ids: set[str] = set()
    found_names: set[str] = set()
    for text in texts:
        found_ids |= set(re.findall(r"\d{17}[\dXx]", text)) & ids
        for run in re.findall(r"[\u4e00-\u9fff·]{3,}", text):
            found_names |= {n for n in names if n in run}
    return found_ids, found_names


def test_serve_schedules_runs_publishes_counts_and_survives_a_restart(server, tmp_path):
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter, FlowRunFilterId

    started = time.monotonic()
    config = _demo_config(tmp_path / "demo")
    env = server["env"]
    serve_log = tmp_path / "serve.log"
    serve_cmd = [str(BIN / "aidleads"), "serve", "--config", str(config)]
    serving = _start(serve_cmd, env, serve_log)
    try:
        with SyncPrefectClient(server["api"]) as client:
            # 1. serve registered the deployment with the configured cron and timezone
            deployment = _wait("the deployment", lambda: _deployment(client), timeout=180, log=serve_log)
            assert serving.poll() is None, serve_log.read_text(encoding="utf-8")
            _assert_scheduled(deployment, config)
            only_this = DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
            scheduled = _wait("the server's scheduler to plan the nightly runs", lambda: [
                r for r in client.read_flow_runs(deployment_filter=only_this) if r.auto_scheduled], timeout=120, every=2)
            local = [r.expected_start_time.astimezone(ZoneInfo(TIMEZONE)) for r in scheduled]
            assert all((t.hour, t.minute) == (2, 0) for t in local), local

            # 2. a run triggered now, as the README says, is picked up by serve and completes
            trigger = subprocess.run([str(BIN / "prefect"), "deployment", "run", f"{FLOW}/{DEPLOYMENT}"],
                                     env=env, capture_output=True, text=True, timeout=120)
            assert trigger.returncode == 0, trigger.stdout + trigger.stderr
            run_id = UUID(re.search(r"UUID: ([0-9a-f-]{36})", trigger.stdout)[1])

            def finished() -> Any:
                state = client.read_flow_run(run_id).state
                if state is not None and state.is_final():
                    return state
                return None

            state = _wait("the triggered flow run to finish", finished, timeout=420, every=3, log=serve_log)
            assert state.is_completed(), f"{state.type}: {state.message}\n{serve_log.read_text(encoding='utf-8')[-3000:]}"
            flow_run = client.read_flow_run(run_id)
            assert flow_run.parameters == {"config_file": str(config.resolve())}

            # 3. leads were produced and the run is recorded as succeeded
            xlsx = config.parent / "exports" / "latest" / "leads.xlsx"
            assert xlsx.exists()
            rows = list(openpyxl.load_workbook(xlsx, read_only=True)["线索清单"].iter_rows(values_only=True))
            assert len(rows) > 1
            con = open_database(config.parent / "aidleads.duckdb", read_only=True)
            try:
                runs = con.execute("SELECT run_id, status FROM runs").fetchall()
            finally:
                con.close()
            assert [s for _, s in runs] == ["succeeded"]

            # 4. the run carries counts-only artifacts
            artifacts = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
            by_key = {a.key: a for a in artifacts}
            assert {"aidleads-run-summary", "aidleads-source-counts"} <= set(by_key)
            markdown = str(by_key["aidleads-run-summary"].data)
            assert runs[0][0] in markdown and "刑事被害人" in markdown and "A级" in markdown
            table = str(by_key["aidleads-source-counts"].data)
            found_ids, found_names = _personal_data_in([markdown, table, str(flow_run.parameters)])
            assert not found_ids and not found_names, (len(found_ids), len(found_names))

            if os.environ.get("AIDLEADS_SCREENSHOTS"):
                subprocess.run([sys.executable, str(ROOT / "scripts" / "screenshot_ui.py"), "--api", server["api"],
                                "--out", os.environ["AIDLEADS_SCREENSHOTS"], "--budget", "30000"], env=env, check=True, timeout=300)

            # 5. restarting serve updates the same deployment: still one, schedule intact
            _stop(serving)
            assert serving.returncode == 0, f"serve ended with {serving.returncode} on SIGTERM"
            stopped = client.read_deployment(deployment.id)
            assert stopped.schedules[0].active and not stopped.paused, "stopping serve paused the schedule"
            serving = _start(serve_cmd, env, serve_log)
            _wait("serve to re-register the deployment (its schedule is replaced on upsert)",
                  lambda: {s.id for s in client.read_deployment(deployment.id).schedules} - {stopped.schedules[0].id},
                  timeout=180, log=serve_log)
            assert serving.poll() is None, serve_log.read_text(encoding="utf-8")[-3000:]
            deployments = client.read_deployments()
            assert [(d.id, d.name) for d in deployments] == [(deployment.id, DEPLOYMENT)]
            _assert_scheduled(deployments[0], config)
    finally:
        _stop(serving)

    # nothing personal reached Prefect: its database, nor the serve process's output
    blobs = [p.read_bytes().decode("utf-8", errors="ignore") for p in server["home"].rglob("*") if p.is_file()]
    found_ids, found_names = _personal_data_in(blobs + [serve_log.read_text(encoding="utf-8", errors="ignore")])
    assert not found_ids, f"{len(found_ids)} ID numbers in Prefect's server files or serve's output"
    assert not found_names, f"{len(found_names)} names in Prefect's server files or serve's output"
    print(f"serve end-to-end: {time.monotonic() - started:.0f} s", file=sys.stderr)
