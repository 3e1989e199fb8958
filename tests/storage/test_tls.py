"""TLS to a ClickHouse server: the configured options reach a real TLS endpoint on loopback.

No ClickHouse server can run here, so the endpoint is a small Python HTTPS server with
certificates the test makes with the `openssl` command: a CA, a server certificate for
`clickhouse.internal` only, and client certificates. It records what the TLS handshake and the
first HTTP request carried (SNI, the client certificate, credentials) and answers like a
ClickHouse refusing the user (HTTP 500 with a `Code: 516` exception), which is as far as a
connection goes without a ClickHouse. So these tests show the handshake (server verified by
our CA under the overridden name, client certificate presented and accepted) and the request
on top of it; the ClickHouse side of certificate authentication is ClickHouse's own.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gateway.config import load
from gateway.storage.clickhouse import ClickHouse, StorageError

SERVER_NAME = "clickhouse.internal"


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path
    """A client certificate signed by another CA."""
    stranger_key: Path


def openssl(directory: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True, timeout=60)


def make_ca(directory: Path, name: str) -> None:
    openssl(
        directory, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
        "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )


def make_cert(directory: Path, name: str, ca: str, extensions: str) -> None:
    (directory / f"{name}.ext").write_text(extensions)
    openssl(
        directory, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
    )
    openssl(
        directory, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey",
        f"{ca}.key", "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
        "-extfile", f"{name}.ext",
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    directory = tmp_path_factory.mktemp("pki")
    make_ca(directory, "ca")
    make_ca(directory, "other-ca")
    make_cert(directory, "server", "ca", f"subjectAltName=DNS:{SERVER_NAME}\n"
              "extendedKeyUsage=serverAuth\n")
    make_cert(directory, "gateway", "ca", "extendedKeyUsage=clientAuth\n")
    make_cert(directory, "stranger", "other-ca", "extendedKeyUsage=clientAuth\n")
    return Pki(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "gateway.pem",
        client_key=directory / "gateway.key",
        stranger_cert=directory / "stranger.pem",
        stranger_key=directory / "stranger.key",
    )


@dataclass
class Seen:
    server_names: list[str | None] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)


class Endpoint:
    """An HTTPS server requiring a client certificate from our CA, on a free loopback port."""

    def __init__(self, pki: Pki) -> None:
        self.seen = Seen()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.server_cert, pki.server_key)
        context.load_verify_locations(pki.ca)
        context.verify_mode = ssl.CERT_REQUIRED
        context.sni_callback = self._sni
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self._answer()

            def do_GET(self) -> None:
                self._answer()

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                peer = self.connection.getpeercert()  # type: ignore[attr-defined]
                subject = dict(item[0] for item in peer["subject"]) if peer else {}
                seen.requests.append(
                    {"client_cn": subject.get("commonName"), "headers": dict(self.headers)}
                )
                body = (
                    b"Code: 516. DB::Exception: tls-test-endpoint: no ClickHouse behind this "
                    b"TLS endpoint. (AUTHENTICATION_FAILED)\n"
                )
                self.send_response(500)
                self.send_header("X-ClickHouse-Exception-Code", "516")
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _sni(self, _sock: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        self.seen.server_names.append(name)

    def __enter__(self) -> Endpoint:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)


@pytest.fixture
def endpoint(pki: Pki) -> Iterator[Endpoint]:
    with Endpoint(pki) as running:
        yield running


def connect_error(config_overrides: dict[str, Any]) -> str:
    """Connect through the gateway's storage pool as configured; the error it reports."""
    storage = load(None, config_overrides).storage
    store = ClickHouse.for_config(storage)
    try:
        with pytest.raises(StorageError) as caught:
            store.run_sync(lambda client: client.command("SELECT 1"))
    finally:
        store.close()
    return str(caught.value)


def tls_config(
    endpoint: Endpoint, pki: Pki, user: str = "gw:secret", **extra: Any
) -> dict[str, Any]:
    return {
        "storage.dsn": f"https://{user}@127.0.0.1:{endpoint.port}/metrics",
        "storage.ca_cert": str(pki.ca),
        "storage.server_hostname": SERVER_NAME,
        "storage.client_cert": str(pki.client_cert),
        "storage.client_key": str(pki.client_key),
        **extra,
    }


def test_mutual_tls_with_a_password_presents_the_certificate_and_the_password(
    endpoint: Endpoint, pki: Pki
) -> None:
    message = connect_error(tls_config(endpoint, pki))
    # The request reached the endpoint over TLS and its answer is what the gateway reports.
    assert "516" in message, message
    assert set(endpoint.seen.server_names) == {SERVER_NAME}  # SNI is the overridden name
    assert endpoint.seen.requests, "no request arrived over TLS"
    request = endpoint.seen.requests[0]
    assert request["client_cn"] == "gateway"
    assert request["headers"]["Authorization"].startswith("Basic ")  # gw:secret
    assert "X-ClickHouse-SSL-Certificate-Auth" not in request["headers"]


def test_mutual_tls_without_a_password_authenticates_the_user_by_certificate(
    endpoint: Endpoint, pki: Pki
) -> None:
    message = connect_error(tls_config(endpoint, pki, user="gw"))
    assert "516" in message, message
    request = endpoint.seen.requests[0]
    assert request["client_cn"] == "gateway"
    assert request["headers"]["X-ClickHouse-SSL-Certificate-Auth"] == "on"
    assert request["headers"]["X-ClickHouse-User"] == "gw"
    assert "Authorization" not in request["headers"]


def test_a_certificate_in_one_file_with_its_key(
    endpoint: Endpoint, pki: Pki, tmp_path: Path
) -> None:
    combined = tmp_path / "gateway-with-key.pem"
    combined.write_bytes(pki.client_cert.read_bytes() + pki.client_key.read_bytes())
    overrides = tls_config(endpoint, pki, **{"storage.client_cert": str(combined)})
    del overrides["storage.client_key"]
    assert "516" in connect_error(overrides)
    assert endpoint.seen.requests[0]["client_cn"] == "gateway"


@pytest.mark.parametrize(
    "change",
    [
        {"storage.client_cert": None},  # no client certificate: the server refuses
        {"client": "stranger"},  # a certificate the server's CA did not sign
        {"storage.server_hostname": None},  # 127.0.0.1 is not in the server's certificate
        {"storage.server_hostname": "other.internal"},  # nor is another name
        {"storage.ca_cert": None},  # the system CAs do not know our CA
    ],
)
def test_no_request_is_sent_when_tls_does_not_verify(
    endpoint: Endpoint, pki: Pki, change: dict[str, Any]
) -> None:
    overrides = tls_config(endpoint, pki)
    if change.pop("client", None) == "stranger":
        overrides["storage.client_cert"] = str(pki.stranger_cert)
        overrides["storage.client_key"] = str(pki.stranger_key)
    for key, value in change.items():
        if value is None:
            overrides.pop(key)
            if key == "storage.client_cert":
                overrides.pop("storage.client_key")
        else:
            overrides[key] = value
    message = connect_error(overrides)
    assert endpoint.seen.requests == [], message
    assert "516" not in message
    assert "cannot connect to https://gw:***@127.0.0.1" in message


# urllib3 warns once per call site that the request is unverified: that is the point here.
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_without_verification_any_name_is_accepted(endpoint: Endpoint, pki: Pki) -> None:
    overrides = tls_config(endpoint, pki, **{"storage.tls_verify": False})
    del overrides["storage.server_hostname"]
    del overrides["storage.ca_cert"]
    assert "516" in connect_error(overrides)
    assert endpoint.seen.requests[0]["client_cn"] == "gateway"
