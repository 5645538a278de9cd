"""A TLS failure names its reason (self-signed, unknown CA, wrong host, expired) and the fix for
that reason, for requests, aiohttp and gRPC, and is never retried.

Real handshakes: the emulator (its CA not trusted), and a loopback TLS server presenting
certificates made here for each fault.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from airflow_provider_salesforce_suite.core.errors import SalesforcePubSubError, SalesforceTransportError
from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook

TRUST_FIX = "set the extra 'ca_bundle'"
NOT_CA_FIX = "ca_bundle does not help"


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _cert(subject: str, key, *, issuer: tuple[str, object] | None = None, ca: bool = False,
          san: x509.GeneralName | None = None, days: tuple[int, int] = (-1, 30)) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    issuer_name, issuer_key = (_name(issuer[0]), issuer[1]) if issuer else (_name(subject), key)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now + dt.timedelta(days=days[0])).not_valid_after(now + dt.timedelta(days=days[1]))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([san]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class Pki:
    ca: Path
    other_ca: Path
    leaves: dict[str, tuple[Path, Path]]  # fault -> (chain, key)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    base = tmp_path_factory.mktemp("tls-faults")
    pem = serialization.Encoding.PEM

    def write(name: str, *items) -> Path:
        path = base / name
        path.write_bytes(b"".join(
            i.public_bytes(pem) if isinstance(i, x509.Certificate) else
            i.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()) for i in items))
        return path

    ca_key, other_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca, other = _cert("Test CA", ca_key, ca=True), _cert("Other CA", other_key, ca=True)
    loopback = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    leaves = {}
    for fault, kwargs in {
        "self_signed": {"san": loopback},
        "unknown_ca": {"san": loopback, "issuer": ("Test CA", ca_key)},
        "hostname": {"san": x509.DNSName("sf.example.invalid"), "issuer": ("Test CA", ca_key)},
        "expired": {"san": loopback, "issuer": ("Test CA", ca_key), "days": (-30, -1)},
    }.items():
        key = ec.generate_private_key(ec.SECP256R1())
        leaves[fault] = (write(f"{fault}.pem", _cert("127.0.0.1", key, **kwargs)), write(f"{fault}-key.pem", key))
    return Pki(ca=write("ca.pem", ca), other_ca=write("other-ca.pem", other), leaves=leaves)


class TlsServer:
    """Accepts connections and completes (or fails) the server side of the handshake; counts them."""

    def __init__(self, chain: Path, key: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(chain, key)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.handshakes = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.handshakes += 1
            try:
                with self.context.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def serve(pki) -> Iterator:
    servers: list[TlsServer] = []

    def start(fault: str) -> TlsServer:
        servers.append(TlsServer(*pki.leaves[fault]))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _session_conn(monkeypatch, conn_id: str, url: str, ca_bundle: Path | None) -> str:
    extra = {"auth_type": "session", "session_id": "00Dx!not-a-real-session", "instance_url": url, "max_retries": 2,
             "retry_max_seconds": 5}
    if ca_bundle:
        extra["ca_bundle"] = str(ca_bundle)
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(
        {"conn_type": "salesforce_suite", "host": url, "extra": extra}))
    return conn_id


@pytest.mark.parametrize(("fault", "trusted", "reason", "fix"), [
    ("self_signed", "ca", "is self-signed", TRUST_FIX),
    ("unknown_ca", "other_ca", "signed by a CA this machine does not trust", TRUST_FIX),
    ("hostname", "ca", "not valid for 127.0.0.1", NOT_CA_FIX),
    ("expired", "ca", "has expired", NOT_CA_FIX),
])
def test_each_certificate_fault_is_named_with_its_fix(serve, pki, monkeypatch, caplog, fault, trusted, reason,
                                                      fix) -> None:
    server = serve(fault)
    url = f"https://127.0.0.1:{server.port}"
    hook = SalesforceBaseHook(_session_conn(monkeypatch, f"tls_{fault}", url, getattr(pki, trusted)))
    with pytest.raises(SalesforceTransportError) as err:
        hook.request("GET", hook.data_url("limits"))
    text = str(err.value)
    assert "TLS certificate/handshake problem with 127.0.0.1" in text and reason in text and fix in text, text
    assert "Not retried" in text and server.handshakes == 1 and "failed transiently" not in caplog.text
    assert "not-a-real-session" not in text


async def test_async_session_names_the_fault_too(serve, pki, monkeypatch) -> None:
    server = serve("expired")
    url = f"https://127.0.0.1:{server.port}"
    hook = SalesforceBaseHook(_session_conn(monkeypatch, "tls_async", url, pki.ca))
    async with hook.async_session() as session:
        with pytest.raises(SalesforceTransportError, match="has expired.*ca_bundle does not help"):
            await session.request("GET", hook.data_url("limits"))
    assert server.handshakes == 1


def test_emulator_without_ca_bundle_is_self_signed_with_the_ca_bundle_hint(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn(extra={"ca_bundle": None}))
    with pytest.raises(SalesforceTransportError) as err:
        hook.request("GET", hook.data_url("limits"))
    text = str(err.value)
    assert "is self-signed, or issued by a private CA" in text and TRUST_FIX in text and "'verify': false" in text


async def test_pubsub_tls_failure_is_named_and_not_retried(salesforce_emulator_reset, sf_conn, caplog) -> None:
    from airflow_provider_salesforce_suite.hooks.pubsub import SalesforcePubSubHook

    server = salesforce_emulator_reset
    token = SalesforceBaseHook(sf_conn()).session.token
    conn_id = sf_conn("pubsub_tls", login=None, password=None, extra={
        "auth_type": "session", "session_id": token.access_token, "instance_url": token.instance_url,
        "ca_bundle": None, "pubsub_endpoint": server.pubsub_endpoint, "max_retries": 3})
    # The org id is given, so the first call over the network is the gRPC one.
    hook = SalesforcePubSubHook(conn_id, tenant_id="00D000000000001AAA")
    try:
        with pytest.raises(SalesforcePubSubError) as err:
            await hook.get_topic("/data/AccountChangeEvent")
    finally:
        await hook.aclose()
    text = str(err.value)
    assert "TLS certificate/handshake problem" in text and "is self-signed" in text and TRUST_FIX in text, text
    assert "failed transiently" not in caplog.text  # not retried
    assert token.access_token not in text


@pytest.mark.parametrize(("text", "kind"), [
    ("SSL_ERROR_SSL: error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED: self signed certificate",
     "self_signed"),
    ("CERTIFICATE_VERIFY_FAILED: unable to get local issuer certificate", "unknown_ca"),
    ("Peer name sf.example.invalid is not in peer certificate", "hostname"),
    ("CERTIFICATE_VERIFY_FAILED: certificate has expired", "expired"),
    ("Tls handshake failed (TSI_PROTOCOL_FAILURE): WRONG_VERSION_NUMBER", "handshake"),
])
def test_grpc_wordings_are_read_too(text: str, kind: str) -> None:
    from airflow_provider_salesforce_suite.core.tls import tls_kind

    assert tls_kind(text=text) == kind
