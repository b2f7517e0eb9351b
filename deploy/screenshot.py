"""Take screenshots of a finished flow run's pages in the Prefect UI, with headless Chromium.

    python deploy/screenshot.py [--flow-run ID] [--out-dir DIR]

Needs Debian's ``chromium`` package (``apt-get install chromium``) and a Prefect server at
``$PREFECT_API_URL`` (default http://127.0.0.1:4200/api, what ``deploy/serve.sh`` starts).
Without ``--flow-run`` it takes the latest completed ``bank-marketing`` run. It writes the
run's page, its logs, and its report's and evaluation's artifact pages as PNG files, each the
whole page (shot in a tall window, the empty space below the content cut off), and prints
their paths.
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

TALL = 7000  # pixels: taller than any of these pages, so each is shot whole
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
    f"--window-size=1600,{TALL}",
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


def artifacts(run_id: UUID) -> dict[str, UUID]:
    """The run's keyed artifacts: key → id."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    return {a.key: a.id for a in found if a.key}


def shoot(chromium: str, url: str, out: Path) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}", url],
            check=True,
            capture_output=True,
            timeout=120,
        )
    trim(out)


def trim(path: Path, margin: int = 24) -> None:
    """Cut the page's empty space below its content: the rows where fewer than a few pixels
    of the content column differ from the bottom corner's colour (the UI's side bar and its
    panels' borders run the window's whole height)."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        rgb = image.convert("RGB")
    # Right of the side bar and of the pattern drawn at its foot (up to ~35% of the width).
    pixels = np.asarray(rgb, dtype=np.int16)[:, int(rgb.width * 0.375) :]
    differs = np.abs(pixels - pixels[-1, -1]).sum(axis=2) > 30
    content = np.flatnonzero(differs.sum(axis=1) > 8)
    if len(content) and content[-1] + margin < rgb.height:
        rgb.crop((0, 0, rgb.width, int(content[-1]) + margin)).save(path)


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
    run_page = f"{ui}/runs/flow-run/{run_id}"
    pages = {f"flow-run-{run_id}.png": run_page, f"logs-{run_id}.png": f"{run_page}?tab=Logs"}
    for key, artifact in sorted(artifacts(run_id).items()):
        for kind in ("report", "evaluation"):
            if key.endswith(f"-{kind}"):
                pages[f"{kind}-{run_id}.png"] = f"{ui}/artifacts/artifact/{artifact}"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, url in pages.items():
        shoot(chromium, url, args.out_dir / name)
        print(f"{args.out_dir / name}  ({url})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
