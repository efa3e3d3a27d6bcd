"""Screenshot the Prefect UI pages an operator looks at, with headless Chromium (for checking, not for the repo).

    python scripts/screenshot_ui.py [--api http://127.0.0.1:4200/api] [--out /tmp/aidleads-ui]

Writes deployments.png (the deployment list), deployment.png (the aidleads deployment and its schedule),
flow-run.png (the latest completed run and its task timeline) and artifact.png (its run-summary artifact,
a taller page so every table shows).
Needs a running Prefect server with the `aidleads serve` deployment and, for the last two, one finished run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

FLOW, DEPLOYMENT, ARTIFACT_KEY = "aidleads-nightly", "nightly", "aidleads-run-summary"


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("error: no Chromium found (install chromium, or put it on PATH)")


def screenshot(browser: str, url: str, png: Path, height: int = 900, budget_ms: int = 15000) -> Path:
    """One headless page load, `budget_ms` of virtual time for the UI's API calls, saved 1400 pixels wide."""
    with tempfile.TemporaryDirectory(prefix="aidleads-chromium-") as profile:
        args = [browser, "--headless", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size=1400,{height}",
                f"--virtual-time-budget={budget_ms}", url]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to sandbox as root (containers, CI)
        subprocess.run(args, check=True, timeout=180, capture_output=True)
    return png


def pages(api: str, ui: str, deployment: str) -> dict[str, str]:
    """File name → UI address for the deployment list, the deployment, its latest completed run and artifact."""
    found = {"deployments": f"{ui}/deployments"}
    response = httpx.get(f"{api}/deployments/name/{FLOW}/{deployment}", timeout=30)
    if response.status_code == 404:
        sys.exit(f"error: no deployment '{FLOW}/{deployment}' at {api}; start `aidleads serve` first")
    response.raise_for_status()
    deployment_id = response.json()["id"]
    found["deployment"] = f"{ui}/deployments/deployment/{deployment_id}"
    runs = httpx.post(f"{api}/flow_runs/filter", timeout=30, json={
        "deployments": {"id": {"any_": [deployment_id]}},
        "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
        "sort": "END_TIME_DESC", "limit": 1}).json()
    if not runs:
        print("no completed run yet: only the deployment pages are captured", file=sys.stderr)
        return found
    run_id = runs[0]["id"]
    found["flow-run"] = f"{ui}/runs/flow-run/{run_id}"
    artifacts = httpx.post(f"{api}/artifacts/filter", timeout=30, json={
        "artifacts": {"key": {"any_": [ARTIFACT_KEY]}, "flow_run_id": {"any_": [run_id]}}, "limit": 1}).json()
    if artifacts:
        found["artifact"] = f"{ui}/artifacts/artifact/{artifacts[0]['id']}"
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", default=os.environ.get("PREFECT_API_URL", "http://127.0.0.1:4200/api"))
    parser.add_argument("--ui", help="UI address (default: the API address without /api)")
    parser.add_argument("--deployment", default=DEPLOYMENT, help="deployment name ([schedule] deployment_name)")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "aidleads-ui")
    parser.add_argument("--budget", type=int, default=15000,
                        help="virtual milliseconds each page may load for (raise it on a slow machine)")
    args = parser.parse_args()
    api = args.api.rstrip("/")
    ui = (args.ui or api.removesuffix("/api")).rstrip("/")
    args.out.mkdir(parents=True, exist_ok=True)
    browser = chromium()
    for name, url in pages(api, ui, args.deployment).items():
        png = screenshot(browser, url, args.out / f"{name}.png", height=1700 if name == "artifact" else 900,
                         budget_ms=args.budget)
        print(f"{png}  ←  {url}")


if __name__ == "__main__":
    main()
