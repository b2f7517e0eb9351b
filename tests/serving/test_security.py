"""Bearer-token auth, HTTPS, and the server's limits (body size, request timeout, bounded
concurrency, header size, header, idle and body timeouts), on real endpoint servers."""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd
import pytest

from core.records.endpoints import EndpointStore
from flows.approval import deploy_approved as deploy
from flows.cli import main as cli
from serving.control import servers
from serving.control.client import EndpointClient
from serving.control.deploys import delete
from serving.options import ServerOptions
from tests.serving_fixtures import SLEEPY, csv_rows, post

GROUP = "bank-marketing"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as ``openssl req -x509`` would make them."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certfile, keyfile


def test_bearer_token_and_https(models, tmp_path, capsys):
    store, features, test = models
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    certfile, keyfile = self_signed(tmp_path)
    options = ServerOptions(
        auth_token_file=str(token_file), certfile=str(certfile), keyfile=str(keyfile)
    )
    url = deploy(store, "secure", GROUP, 1, server=options).endpoint_url
    try:
        assert url.startswith("https://")
        trust = ssl.create_default_context(cafile=str(certfile))
        body, csv = csv_rows(test[:2], features), {"Content-Type": "text/csv"}
        with httpx.Client(base_url=url, verify=trust) as client:
            assert client.get("/ping").status_code == 200  # probes stay open
            assert client.get("/v2/health/ready").status_code == 200
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                refused = client.post("/invocations", content=body, headers=csv | headers)
                assert refused.status_code == 401
                assert refused.json()["error"] == "missing or wrong bearer token"
            assert client.get("/metrics").status_code == 401
            auth = {"Authorization": "Bearer s3cret-token"}
            answer = client.post("/invocations", content=body, headers=csv | auth)
            assert answer.status_code == 200 and len(answer.text.split()) == 2
        with pytest.raises(httpx.ConnectError):  # an untrusted certificate is refused
            httpx.get(f"{url}/ping")

        # Skiff's own clients find the token and the certificate through the runtime folder.
        assert (
            cli(
                [
                    "--store",
                    store.root,
                    "endpoints",
                    "invoke",
                    "secure",
                    "--body",
                    json.dumps({"instances": test[:1][features].to_numpy().tolist()}),
                ]
            )
            == 0
        )
        assert json.loads(capsys.readouterr().out)["predictions"]
        running = servers.running(store, "secure")
        assert running is not None and running.token == "s3cret-token"
    finally:
        delete(store, "secure")


def test_a_bad_token_file_or_half_a_tls_pair_is_refused(tmp_path):
    with pytest.raises(ValueError, match="HTTPS needs both certfile and keyfile"):
        ServerOptions(certfile="c.pem")
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(Exception, match="is empty"):
        ServerOptions(auth_token_file=str(empty)).token()


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=30)


def _answer(sock: socket.socket) -> tuple[int, dict]:
    """The one response a refused connection gets, read until the server closes it."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_http_limits_shed_oversized_headers_and_silent_or_slow_clients(models):
    """Hardening part 1, item 4: a 431 for headers past the limit (whole or never ending), a
    408 for headers or a body that do not arrive in time, a silent connection closed; the
    server answers everyone else throughout."""
    store, features, test = models
    options = ServerOptions(max_header_kb=8, header_timeout=1, idle_timeout=1, body_timeout=1)
    url = deploy(store, "http-limits", GROUP, 1, server=options).endpoint_url
    request = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
    try:
        with _connect(url) as sock:  # a header that never ends: refused once past the limit
            sock.sendall(request + b"X-Big: " + b"a" * 12_000)
            status, body = _answer(sock)
        assert status == 431 and body["error"] == (
            "request line and headers exceed the 8192-byte limit"
        )
        with _connect(url) as sock:  # whole, but too large
            sock.sendall(request + b"X-Big: " + b"a" * 9_000 + b"\r\nContent-Length: 1\r\n\r\n1")
            assert _answer(sock)[0] == 431

        with _connect(url) as sock:  # headers one byte at a time: a 408 once the second is up
            sock.sendall(request)
            started, stop = time.monotonic(), threading.Event()

            def trickle() -> None:
                while not stop.wait(0.1):  # a byte every 0.1 s, for as long as it is read
                    try:
                        sock.send(b"a")
                    except OSError:
                        return

            dripping = threading.Thread(target=trickle, daemon=True)
            dripping.start()
            try:
                status, body = _answer(sock)
            finally:
                stop.set()
                dripping.join()
        assert status == 408 and body["error"] == "request headers not received within 1 s"
        assert time.monotonic() - started < 25  # not kept open by the trickle

        with _connect(url) as sock:  # connected, silent: closed after the idle timeout
            assert sock.recv(1) == b""

        with _connect(url) as sock:  # a body that stops halfway: the client's fault, a 408
            sock.sendall(request + b"Content-Length: 100\r\n\r\n0.1,0.2")
            status, body = _answer(sock)
        assert status == 408 and body["error"] == "the request's body did not arrive within 1 s"

        good = post(url, csv_rows(test[:1], features))
        assert good.status_code == 200
        assert post(url, csv_rows(test[:1], features), **{"X-Fine": "a" * 4000}).status_code == 200
        text = httpx.get(f"{url}/metrics").text
        assert 'skiff_invocation_4xx_errors_total{variant="-"} 1.0' in text  # the slow body
    finally:
        delete(store, "http-limits")


def test_size_limit_timeout_and_bounded_concurrency(models):
    store, features, test = models
    options = ServerOptions(max_body_mb=0.2, request_timeout=0.5, max_concurrency=2)
    url = deploy(store, "limits", GROUP, SLEEPY, server=options).endpoint_url
    try:
        csv = {"Content-Type": "text/csv"}
        big = csv_rows(pd.concat([test] * 10), features)  # about 1 MB
        too_big = httpx.post(f"{url}/invocations", content=big, headers=csv)
        assert too_big.status_code == 413 and "limit" in too_big.json()["error"]

        # 300 rows take the sleepy model a second, in a worker thread: past the timeout.
        slow_body = csv_rows(pd.concat([test] * 2)[:300], features)
        slow = httpx.post(f"{url}/invocations", content=slow_body, headers=csv, timeout=30)
        assert slow.status_code == 504 and "0.5 s request timeout" in slow.json()["error"]

        # Six at once against max_concurrency 2: the rest are refused at once, not queued.
        def call(_: int) -> int:
            return httpx.post(
                f"{url}/invocations", content=slow_body, headers=csv, timeout=30
            ).status_code

        with ThreadPoolExecutor(6) as pool:
            statuses = sorted(pool.map(call, range(6)))
        assert statuses.count(503) >= 3 and set(statuses) <= {503, 504}, statuses
        one = httpx.post(f"{url}/invocations", content=csv_rows(test[:1], features), headers=csv)
        assert one.status_code == 200  # the server is fine afterwards
    finally:
        delete(store, "limits")


def test_security_options_are_never_ignored_on_a_running_server(models, tmp_path, capsys):
    """Hardening part 2, item 7: asking a running server for another token (start, deploy)
    exits 2 naming the difference; nothing reports success while the endpoint stays open."""
    store = models[0]
    deploy(store, "open", GROUP, 1)
    try:
        token = tmp_path / "token"
        token.write_text("t0ken\n")
        for command in (["start", "open"], ["deploy", "open", "2"]):
            code = cli(
                ["--store", store.root, "endpoints", *command, "--auth-token-file", str(token)]
            )
            err = capsys.readouterr().err
            assert code == 2, (command, err)
            assert f"auth_token_file: asked '{token}', it has None" in err
        assert EndpointStore(store).current("open").variants[0].model_version == 1  # no deploy
        # Asking for what it has, or for nothing, is fine; stop, then start with the token.
        assert cli(["--store", store.root, "endpoints", "start", "open"]) == 0
        assert cli(["--store", store.root, "endpoints", "stop", "open"]) == 0
        assert (
            cli(
                [
                    "--store",
                    store.root,
                    "endpoints",
                    "start",
                    "open",
                    "--auth-token-file",
                    str(token),
                ]
            )
            == 0
        )
        capsys.readouterr()
        url = servers.running(store, "open").url
        assert httpx.post(f"{url}/invocations", content="1").status_code == 401
    finally:
        delete(store, "open")


def test_relative_token_and_certificate_paths_work_from_any_folder(models, tmp_path, monkeypatch):
    """Item 8: the paths are stored absolute, so a command from another folder finds them."""
    store, features, test = models
    (tmp_path / "here").mkdir()
    (tmp_path / "here/token").write_text("rel4tive\n")
    certfile, _ = self_signed(tmp_path / "here")
    monkeypatch.chdir(tmp_path / "here")
    options = ServerOptions(auth_token_file="token", certfile="cert.pem", keyfile="key.pem")
    assert options.auth_token_file == str(tmp_path / "here/token")
    url = deploy(store, "relative", GROUP, 1, server=options).endpoint_url
    try:
        monkeypatch.chdir(tmp_path)  # elsewhere
        server = servers.running(store, "relative")
        assert server.token == "rel4tive" and server.certfile == str(certfile)
        with EndpointClient(url, **server.http_options()) as client:
            assert client.predict(test[:2][features].to_numpy()).shape == (2,)
    finally:
        delete(store, "relative")
