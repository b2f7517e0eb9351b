"""``skiff notebook``: JupyterLab with SageMaker code pointed at Skiff, as SageMaker's notebook
instance is. A ``skiff api`` runs beside it (the store's own, when one already serves it on
this machine), every kernel gets the environment that points boto3 and the SageMaker SDK there,
and ``notebooks/`` is open. It binds to loopback and keeps JupyterLab's token on; Ctrl-C stops
what it started."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from core.errors import SkiffError
from core.processes import alive, child_env, end_process, import_path
from core.runtime import api_file, runtime_root
from core.store import Store

DEFAULT_BUCKET = "skiff-demo"
# The SDK's documented opt-out (offline, its telemetry logs a traceback with every call).
TELEMETRY_OPT_OUT = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}
# Asked for only when the user's environment has none: skiff api on loopback accepts any
# signature, and botocore signs nothing without credentials.
AWS_DEFAULTS = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "skiff",
    "AWS_SECRET_ACCESS_KEY": "skiff",
}


def add_notebook_command(areas: Any) -> None:
    parser = areas.add_parser(
        "notebook",
        help="JupyterLab with SageMaker code (boto3, the SDK) pointed at Skiff",
        description=__doc__,
    )
    parser.add_argument("--port", type=int, default=8888, help="JupyterLab's port (8888)")
    parser.add_argument(
        "--api-port", type=int, default=8787, help="skiff api's port, if one is started (8787)"
    )
    parser.add_argument(
        "--bucket",
        default=os.environ.get("SKIFF_DEFAULT_BUCKET", DEFAULT_BUCKET),
        help="the S3 bucket notebooks upload to ($SKIFF_DEFAULT_BUCKET; default %(default)s)",
    )
    parser.add_argument(
        "--s3-endpoint", help="an S3-compatible store's URL (AWS_ENDPOINT_URL_S3), when not AWS"
    )
    parser.add_argument("--data", help="the demo's archive: a local path or a URL")
    parser.add_argument("--dir", help="the folder to open (default: notebooks/)")
    parser.add_argument(
        "--jupyter",
        help="JupyterLab's command, when it is installed apart ($SKIFF_JUPYTER_LAB; default: "
        "this Python's jupyterlab, else jupyter-lab on PATH)",
    )
    parser.set_defaults(func=run_notebook, needs_store=False)


def kernel_environment(
    api_url: str,
    bucket: str,
    telemetry_file: Path,
    data: str | None = None,
    s3_endpoint: str | None = None,
) -> dict[str, str]:
    """What every kernel gets: SageMaker's three services at ``api_url``, the bucket, the
    SDK's telemetry off, and where the demo's data is."""
    env = {
        "AWS_ENDPOINT_URL_SAGEMAKER": api_url,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": api_url,
        "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": api_url,
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(telemetry_file),
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
        "SKIFF_DEFAULT_BUCKET": bucket,
    }
    if data:
        env["SKIFF_DEMO_DATA"] = data
    if s3_endpoint:
        env["AWS_ENDPOINT_URL_S3"] = s3_endpoint
    return {k: v for k, v in AWS_DEFAULTS.items() if k not in os.environ} | env


def telemetry_opt_out() -> Path:
    """The SDK's settings file that turns its telemetry off, on this machine (written each
    time: its content never changes)."""
    file = runtime_root() / "notebook" / "sagemaker-config.json"
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(TELEMETRY_OPT_OUT))
    return file


def running_api(store_root: str) -> str | None:
    """The URL of a ``skiff api`` that serves this store on this machine and answers."""
    try:
        found = json.loads(api_file(store_root).read_text())
    except (OSError, ValueError):
        return None
    if not alive(int(found.get("pid", 0))) or not answers(found["url"]):
        return None
    return found["url"]


def answers(url: str) -> bool:
    """Whether ``url`` answers SageMaker's API (any AWS-shaped answer will do)."""
    request = urllib.request.Request(
        url,
        data=b"{}",
        headers={"X-Amz-Target": "SageMaker.ListTrainingJobs",
                 "Content-Type": "application/x-amz-json-1.1"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=2):
            return True
    except urllib.error.HTTPError:  # an answer, if not a yes (a signature asked for)
        return True
    except OSError:
        return False


def start_api(store: Store, port: int, timeout: float = 120) -> tuple[subprocess.Popen, str]:
    """``skiff api`` over ``store`` on ``port``, once it answers."""
    command = [sys.executable, "-m", "flows.cli", "--store", store.root, "api", "--port", str(port)]
    # In a session of its own (as JupyterLab): Ctrl-C reaches skiff notebook, which stops both.
    proc = subprocess.Popen(
        command, env=child_env(), stdin=subprocess.DEVNULL, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while not answers(url):
        if proc.poll() is not None:
            raise SkiffError(f"skiff api exited with code {proc.returncode} (its output is above)")
        if time.monotonic() > deadline:
            end_process(proc)
            raise SkiffError(f"skiff api did not answer on {url} within {timeout:g} s")
        time.sleep(0.2)
    return proc, url


def notebooks_folder(given: str | None) -> Path:
    """``--dir``, else ``./notebooks``, else the notebooks beside this checkout's code."""
    if given:
        return Path(given)
    for candidate in (Path.cwd() / "notebooks", Path(__file__).resolve().parents[2] / "notebooks"):
        if candidate.is_dir():
            return candidate
    return Path.cwd()


def jupyter_lab(given: str | None) -> list[str]:
    """The command that runs JupyterLab: ``--jupyter`` (or ``$SKIFF_JUPYTER_LAB``), else this
    Python's, else a ``jupyter-lab`` on PATH (JupyterLab installed apart, with pipx say)."""
    if given:
        return [given]
    if importlib.util.find_spec("jupyterlab") is not None:
        return [sys.executable, "-m", "jupyterlab"]
    if found := shutil.which("jupyter-lab"):
        return [found]
    raise SkiffError(
        "skiff notebook needs JupyterLab: pip install 'skiff[notebook]', or one on PATH "
        "(jupyter-lab), or --jupyter PATH"
    )


def skiff_kernel() -> Path:
    """A folder for ``JUPYTER_PATH`` whose ``python3`` kernel is this Python (with Skiff's
    import path), whichever environment JupyterLab runs from: the notebooks' kernels see
    boto3, the SDK and Skiff, not JupyterLab's own packages."""
    if importlib.util.find_spec("ipykernel") is None:
        raise SkiffError("skiff notebook needs ipykernel here: pip install 'skiff[notebook]'")
    folder = runtime_root() / "notebook" / "jupyter"
    spec = folder / "kernels" / "python3" / "kernel.json"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (Skiff)",
                "language": "python",
                "env": {"PYTHONPATH": import_path()},
            }
        )
    )
    return folder


def run_notebook(store: Store, args: argparse.Namespace) -> None:
    lab = jupyter_lab(args.jupyter or os.environ.get("SKIFF_JUPYTER_LAB"))
    kernels = skiff_kernel()
    store.ensure_layout()
    signal.signal(signal.SIGTERM, _interrupt)  # stopped as by Ctrl-C: what it started too
    started: dict[str, subprocess.Popen] = {}
    try:
        url = running_api(store.root)
        if url is None:
            started["skiff api"], url = start_api(store, args.api_port)
        env = kernel_environment(
            url, args.bucket, telemetry_opt_out(), data=args.data, s3_endpoint=args.s3_endpoint
        )
        token = os.environ.get("JUPYTER_TOKEN") or secrets.token_urlsafe(24)
        folder = notebooks_folder(args.dir)
        lab += ["--no-browser", "--ip=127.0.0.1", f"--port={args.port}",
                "--ServerApp.port_retries=0", f"--ServerApp.root_dir={folder}"]  # fmt: skip
        if os.geteuid() == 0:  # a container's root, say: loopback and the token still hold
            lab.append("--allow-root")
        search = os.pathsep.join(filter(None, [str(kernels), os.environ.get("JUPYTER_PATH")]))
        # Not our PYTHONPATH: JupyterLab may be another environment's (the kernel gets it).
        lab_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        started["JupyterLab"] = subprocess.Popen(
            lab,
            env=lab_env | env | {"JUPYTER_TOKEN": token, "JUPYTER_PATH": search},
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        print(
            f"skiff notebook: JupyterLab on http://127.0.0.1:{args.port}/lab?token={token} "
            f"({folder}), SageMaker's API at {url}, bucket {args.bucket}",
            file=sys.stderr,
            flush=True,
        )
        while all(p.poll() is None for p in started.values()):
            time.sleep(0.5)
        name, ended = next((n, p) for n, p in started.items() if p.poll() is not None)
        raise SkiffError(f"{name} exited with code {ended.returncode}")
    except KeyboardInterrupt:
        pass
    finally:
        for proc in reversed(started.values()):
            with contextlib.suppress(OSError):
                end_process(proc, grace=10)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
