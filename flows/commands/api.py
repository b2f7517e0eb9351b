"""``skiff api``: serve SageMaker's API (training jobs, tags) over a store, in the foreground."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

from core.errors import SkiffError
from core.runtime import api_file
from core.store import Store


def add_api_command(areas: Any) -> None:
    parser = areas.add_parser(
        "api",
        help="serve SageMaker's API, so that SageMaker code (boto3, the SDK) runs on Skiff",
        description="Point SageMaker code at it with AWS_ENDPOINT_URL_SAGEMAKER=http://HOST:PORT.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8787, help="port (default 8787)")
    parser.add_argument(
        "--credentials",
        metavar="FILE",
        help="'access-key-id = secret' lines: requests must be signed with one (SigV4); "
        "without it the server listens on loopback only and accepts any signature",
    )
    parser.add_argument("--account-id", default=None, help="account id in ARNs (000000000000)")
    parser.add_argument("--region", default=None, help="region in ARNs (us-east-1)")
    parser.add_argument(
        "--backend",
        choices=("auto", "local", "dask", "ec2"),
        default="auto",
        help="where jobs train. auto: one instance locally, several on a Dask LocalCluster "
        "of that many workers (capped at the cores); dask: --scheduler's cluster; ec2: "
        "instances launched per job (SKIFF_EC2_* settings)",
    )
    parser.add_argument("--scheduler", help="a Dask scheduler's address, with --backend dask")
    parser.set_defaults(func=serve, needs_store=False)


def serve(store: Store, args: argparse.Namespace) -> None:
    import uvicorn

    from flows import temporary_server
    from flows.api.auth import read_credentials
    from flows.api.context import DEFAULT_ACCOUNT, DEFAULT_REGION, ApiContext
    from flows.api.launch import Placement
    from flows.api.server import is_loopback, make_app

    if not is_loopback(args.host) and not args.credentials:
        raise SkiffError(
            f"refusing to serve on {args.host} without --credentials: anyone who can reach it "
            "could run jobs (bind to 127.0.0.1, or give --credentials FILE)"
        )
    if args.scheduler and args.backend != "dask":
        raise SkiffError("--scheduler goes with --backend dask")
    try:
        credentials = read_credentials(args.credentials) if args.credentials else None
    except (OSError, ValueError) as exc:
        raise SkiffError(f"cannot read --credentials: {exc}") from None
    store.ensure_layout()
    options = {"scheduler": args.scheduler} if args.scheduler else {}
    prefect_url = temporary_server.start_if_needed()  # one for every job this server starts
    ctx = ApiContext(
        store=store,
        account=args.account_id or DEFAULT_ACCOUNT,
        region=args.region or DEFAULT_REGION,
        placement=Placement(args.backend, options),
        child_env={"PREFECT_API_URL": prefect_url},
    )
    url = f"http://{args.host}:{args.port}"
    print(
        f"skiff api: SageMaker's API on {url} (store {store.root}, jobs on {args.backend}; "
        f"Prefect at {prefect_url})\n  export AWS_ENDPOINT_URL_SAGEMAKER={url}",
        file=sys.stderr,
        flush=True,
    )
    app = make_app(ctx, credentials)
    with announced(store.root, url):
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


@contextlib.contextmanager
def announced(store_root: str, url: str) -> Iterator[None]:
    """This machine's note that a ``skiff api`` serves the store at ``url``, while it does."""
    file = api_file(store_root)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps({"url": url, "pid": os.getpid(), "store": store_root}))
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            if json.loads(file.read_text()).get("pid") == os.getpid():  # not a later one's
                file.unlink()
