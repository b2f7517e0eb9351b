"""Bearer-token auth, HTTPS, and the server's limits (body size, request timeout, bounded
concurrency), on real endpoint servers."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
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
from tests.serving_fixtures import SLEEPY, csv_rows

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
