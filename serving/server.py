"""The endpoint process: ``python -m serving.server --store URL --endpoint NAME``.

It binds its socket itself (``--port 0``: a free port), records its URL in ``--state-file``
(machine-local, outside the store), and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
from pathlib import Path

import uvicorn

from algorithms.jobs import now
from algorithms.store import Store
from serving.app import create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.server", description=__doc__)
    parser.add_argument("--store", required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--poll-interval", type=float, default=0.5)
    parser.add_argument("--state-file", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    host, port = sock.getsockname()[:2]
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    if args.state_file:
        tmp = args.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "url": url, "store": args.store,
                                   "endpoint": args.endpoint, "started_at": now()}))  # fmt: skip
        os.replace(tmp, args.state_file)
    app = create_app(Store(args.store), args.endpoint, poll_interval=args.poll_interval)
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_keep_alive=75)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        if args.state_file:
            args.state_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
