"""The endpoint process: ``python -m serving.dataplane.server --store URL --endpoint NAME``.

It binds its socket itself (``--port 0``: a free port), records its URL in ``--state-file``
(machine-local, outside the store), and serves until SIGTERM. ``--options`` is a
``ServerOptions`` as JSON: with ``server_workers`` N > 1 it is uvicorn's supervisor over N
worker processes sharing the socket; each holds every live variant and follows the stored
config on its own, and their counters are summed through a shared metrics folder
(``instrumentation.py``). HTTPS when given a certificate and key; a bearer token when given a
token file.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

import uvicorn
from uvicorn.supervisors import Multiprocess

from core.clock import now
from core.errors import ServingError
from serving.contract import ServerState
from serving.dataplane.connections import ConnectionLimits, LimitedHttpTools
from serving.options import ServerOptions

# What each worker's app reads (workers are spawned processes: they get the environment).
# Named here, not in app.py: importing the app would import prometheus_client, which must
# not happen before PROMETHEUS_MULTIPROC_DIR is set below.
ENV_STORE, ENV_ENDPOINT, ENV_POLL = "SKIFF_SERVE_STORE", "SKIFF_SERVE_ENDPOINT", "SKIFF_SERVE_POLL"
ENV_OPTIONS = "SKIFF_SERVE_OPTIONS"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.dataplane.server", description=__doc__)
    parser.add_argument("--store", required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--poll-interval", type=float, default=0.5)
    parser.add_argument("--state-file", type=Path)
    parser.add_argument("--options", default="{}", help="ServerOptions as JSON")
    args = parser.parse_args(argv)
    try:
        options = ServerOptions.model_validate_json(args.options)
        options.token()  # a missing or empty token file stops the start, with its reason
    except (ValueError, ServingError) as exc:
        print(f"bad server options: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    host, port = sock.getsockname()[:2]
    scheme = "https" if options.certfile else "http"
    url = f"{scheme}://{host if ':' not in host else f'[{host}]'}:{port}"
    if args.state_file:
        tmp = args.state_file.with_suffix(".tmp")
        state = ServerState(
            pid=os.getpid(),
            url=url,
            store=args.store,
            endpoint=args.endpoint,
            started_at=now(),
            auth_token_file=options.auth_token_file,
            certfile=options.certfile,
            options=options,
        )
        tmp.write_text(state.model_dump_json())
        os.replace(tmp, args.state_file)
    # Before anything imports prometheus_client: its multiprocess mode reads this at import.
    metrics_dir = tempfile.mkdtemp(prefix="skiff-metrics-")
    os.environ |= {
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        ENV_STORE: args.store,
        ENV_ENDPOINT: args.endpoint,
        ENV_POLL: str(args.poll_interval),
        ENV_OPTIONS: options.model_dump_json(),
    }
    limits = ConnectionLimits(options.max_header, options.header_timeout, options.idle_timeout)
    config = uvicorn.Config(
        "serving.dataplane.app:app_from_environment",
        factory=True,
        http=functools.partial(LimitedHttpTools, limits=limits),
        log_level="warning",
        access_log=False,
        # Skiff reads no client address or scheme: uvicorn's X-Forwarded-* rewrite would cost
        # ~4% of the CPU of a single-record request (py-spy at 64 connections) for nothing.
        proxy_headers=False,
        # Longer than a load balancer's idle timeout (60 s on AWS's), so that the server never
        # closes a connection the balancer is about to reuse.
        timeout_keep_alive=75,
        workers=options.server_workers,
        ssl_certfile=options.certfile,
        ssl_keyfile=options.keyfile,
    )
    try:
        if options.server_workers > 1:
            Supervisor(config, sockets=[sock]).run()
        else:
            uvicorn.Server(config).run(sockets=[sock])
    finally:
        if args.state_file:
            args.state_file.unlink(missing_ok=True)
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


class Supervisor(Multiprocess):
    """uvicorn's supervisor of worker processes, which also drops a dead worker's gauges.

    uvicorn replaces a worker that died; its gauge files would stay in the metrics folder and
    count as a live worker serving its last config forever (one more ready worker than there
    are, and a config number that never rises: every later update would wait in vain).
    """

    def keep_subprocess_alive(self) -> None:
        before = {process.pid for process in self.processes}
        super().keep_subprocess_alive()
        gone = before - {process.pid for process in self.processes}
        if gone:
            # Imported here, in the supervisor only, once the metrics folder is set.
            from prometheus_client import multiprocess

            for pid in gone:
                if pid is not None:
                    multiprocess.mark_process_dead(pid)


if __name__ == "__main__":
    sys.exit(main())
