"""A local certificate authority and server certificate for the emulator's HTTPS.

Generated once into a cert dir (default ``~/.cache/salesforce-suite-emulator/``) and reused on
later starts. Clients verify against ``cert.pem`` (a CA:TRUE self-signed certificate); the
server presents a leaf certificate for ``127.0.0.1``, ``localhost`` and ``::1`` signed by that
CA. A separate leaf keeps strict verifiers (Python 3.13's ``VERIFY_X509_STRICT``) happy,
which reject a CA certificate used as a server certificate in some configurations.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_CERT_DIR = Path("~/.cache/salesforce-suite-emulator")
CA_FILE = "cert.pem"
SERVER_CERT_FILE = "server.pem"
SERVER_KEY_FILE = "server-key.pem"
_DNS_NAMES = ("localhost",)
_IP_ADDRESSES = ("127.0.0.1", "::1")
# Regenerate the leaf when it has less than this left, so a long-lived cache never breaks.
_RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files of the emulator's TLS setup.

    :param ca_bundle: the CA certificate clients trust (``requests(verify=...)``, the
        connection's ``ca_bundle`` extra).
    :param cert_path: the server certificate chain (leaf + CA).
    :param key_path: the server's private key.
    """

    ca_bundle: Path
    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        """An SSL context for the server side."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context

    def client_context(self) -> ssl.SSLContext:
        """An SSL context for clients (aiohttp) that trusts the emulator's CA."""
        return ssl.create_default_context(cafile=str(self.ca_bundle))


def ensure_certificate(cert_dir: str | os.PathLike[str] | None = None) -> TlsFiles:
    """The emulator's TLS files, generating them on first use.

    Safe when several processes start at once (a lock file serialises generation).

    :param cert_dir: where the files live (default ``~/.cache/salesforce-suite-emulator/``).
    """
    directory = Path(cert_dir if cert_dir is not None else DEFAULT_CERT_DIR).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / CA_FILE, directory / SERVER_CERT_FILE, directory / SERVER_KEY_FILE)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _usable(files):
            _generate(files)
    return files


def _usable(files: TlsFiles) -> bool:
    if not (files.ca_bundle.exists() and files.cert_path.exists() and files.key_path.exists()):
        return False
    try:
        leaf = x509.load_pem_x509_certificate(files.cert_path.read_bytes())
        ca = x509.load_pem_x509_certificate(files.ca_bundle.read_bytes())
    except ValueError:
        return False
    now = dt.datetime.now(dt.timezone.utc)
    return leaf.issuer == ca.subject and leaf.not_valid_after_utc - now > _RENEW_BEFORE and ca.not_valid_after_utc > now


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _generate(files: TlsFiles) -> None:
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)  # tolerate clock skew
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Salesforce Suite Emulator"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Salesforce Suite Emulator Local CA"),
    ])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName(name) for name in _DNS_NAMES] + [
        x509.IPAddress(ipaddress.ip_address(ip)) for ip in _IP_ADDRESSES
    ]
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_encipherment=False, content_commitment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    _write(files.key_path, leaf_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), 0o600)
    _write(files.cert_path, leaf.public_bytes(pem) + ca_cert.public_bytes(pem), 0o644)
    _write(files.ca_bundle, ca_cert.public_bytes(pem), 0o644)
