"""Take screenshots of a finished flow run's pages in the Prefect UI, with headless Chromium.

    python deploy/screenshot.py [--flow-run ID] [--out-dir DIR]

Needs Debian's ``chromium`` package (``apt-get install chromium``) and a Prefect server at
``$PREFECT_API_URL`` (default http://127.0.0.1:4200/api, what ``deploy/serve.sh`` starts).
Without ``--flow-run`` it takes the latest completed ``bank-marketing`` run. It writes the
run's page and its report artifact's page as PNG files and prints their paths.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from uuid import UUID

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1600,2400",
    # The UI is a single-page app: let its scripts fetch and render before the shot.
    "--virtual-time-budget=20000",
]


def latest_completed_run(api_url: str) -> UUID:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["bank-marketing"])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.COMPLETED]))
            ),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )
    if not runs:
        sys.exit(f"no completed bank-marketing run on {api_url}")
    return runs[0].id


def report_artifact(run_id: UUID) -> UUID | None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    reports = [a for a in artifacts if a.key and a.key.endswith("-report")]
    return reports[0].id if reports else None


def shoot(chromium: str, url: str, out: Path) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}", url],
            check=True,
            capture_output=True,
            timeout=120,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flow-run", type=UUID, help="default: the latest completed run")
    parser.add_argument("--out-dir", type=Path, default=Path("."))
    args = parser.parse_args()
    api_url = os.environ.setdefault("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium is not installed: apt-get install chromium")
    ui = api_url.removesuffix("/").removesuffix("/api")
    run_id = args.flow_run or latest_completed_run(api_url)
    pages = {f"flow-run-{run_id}.png": f"{ui}/runs/flow-run/{run_id}"}
    artifact = report_artifact(run_id)
    if artifact:
        pages[f"report-{run_id}.png"] = f"{ui}/artifacts/artifact/{artifact}"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, url in pages.items():
        shoot(chromium, url, args.out_dir / name)
        print(f"{args.out_dir / name}  ({url})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
