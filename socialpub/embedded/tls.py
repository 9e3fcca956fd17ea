"""The embedded server's TLS identity: a private CA and a serving certificate for loopback.

Why TLS on loopback: kubectl (client-go's clientcmd) sends a kubeconfig's credentials only to an
``https`` server, so a bearer token is only possible over TLS; and a page in a browser cannot
complete a handshake with a server whose CA it does not trust, which closes ``no-cors`` writes
and DNS rebinding before any HTTP is spoken (the checks in :mod:`socialpub.embedded.access`
stand behind that).

One CA per state directory, made once: its certificate goes into the kubeconfig
(``certificate-authority-data``), its private key is discarded right after signing the serving
certificate, so nothing on the machine can mint another certificate it vouches for. The serving
certificate names ``127.0.0.1``, ``::1`` and ``localhost``. Both are ECDSA P-256 (cheap
handshakes) and are remade when less than a day of validity is left.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from socialpub.embedded.statedir import write_private

__all__ = ["CA_FILE", "TlsIdentity", "create_identity", "load_or_create_identity"]

CA_FILE = "ca.crt"
_CERT_FILE = "apiserver.crt"
_KEY_FILE = "apiserver.key"
_VALIDITY = dt.timedelta(days=3650)
_RENEW_BEFORE = dt.timedelta(days=1)


@dataclass(frozen=True)
class TlsIdentity:
    """PEM texts of the CA certificate, the serving certificate and its private key."""

    ca_pem: str
    cert_pem: str
    key_pem: str

    def server_context(self) -> ssl.SSLContext:
        """The server side of TLS (1.2 and up), loaded without the key touching a shared path."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # load_cert_chain reads files only: a private temporary directory, gone right after.
        with tempfile.TemporaryDirectory(prefix="socialpub-tls-") as tmp:
            cert, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
            write_private(cert, self.cert_pem)
            write_private(key, self.key_pem)
            context.load_cert_chain(cert, key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context trusting exactly this CA (for in-process callers and tests)."""
        return ssl.create_default_context(cadata=self.ca_pem)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "socialpub embedded"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    start: dt.datetime,
    end: dt.datetime,
    *,
    ca: bool,
) -> x509.CertificateBuilder:
    """What both certificates share: names, key, validity, and what the key may do (critical):
    the CA only signs certificates and CRLs (and no CA below it); the serving certificate only
    signs its handshakes."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )


def create_identity(now: dt.datetime | None = None) -> TlsIdentity:
    """A new CA and a serving certificate for loopback, signed by it."""
    now = now or dt.datetime.now(dt.UTC)
    start, end = now - dt.timedelta(minutes=5), now + _VALIDITY
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_subject = _name("socialpub-embedded-ca")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        _builder(ca_subject, ca_subject, ca_key.public_key(), start, end, ca=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(_name("socialpub-embedded-apiserver"), ca_subject, key.public_key(), start, end, ca=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                    x509.DNSName("localhost"),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return TlsIdentity(
        ca_pem=ca.public_bytes(pem).decode(),
        cert_pem=cert.public_bytes(pem).decode(),
        key_pem=key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
    )


def _load(state_dir: Path, now: dt.datetime) -> TlsIdentity | None:
    try:
        identity = TlsIdentity(
            ca_pem=(state_dir / CA_FILE).read_text(),
            cert_pem=(state_dir / _CERT_FILE).read_text(),
            key_pem=(state_dir / _KEY_FILE).read_text(),
        )
        certs = [x509.load_pem_x509_certificate(p.encode()) for p in (identity.ca_pem, identity.cert_pem)]
        serialization.load_pem_private_key(identity.key_pem.encode(), password=None)
    except (OSError, ValueError):
        return None
    if any(c.not_valid_after_utc - now < _RENEW_BEFORE for c in certs):
        return None
    return identity


def load_or_create_identity(state_dir: Path | None) -> TlsIdentity:
    """The identity kept in ``state_dir`` (made and saved, 0600, when missing or expiring);
    a fresh one each time for an in-memory server (``state_dir`` is ``None``)."""
    now = dt.datetime.now(dt.UTC)
    if state_dir is None:
        return create_identity(now)
    identity = _load(state_dir, now)
    if identity is None:
        identity = create_identity(now)
        for name in (_KEY_FILE, _CERT_FILE, CA_FILE):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(state_dir / name)
        write_private(state_dir / _KEY_FILE, identity.key_pem)
        write_private(state_dir / _CERT_FILE, identity.cert_pem)
        write_private(state_dir / CA_FILE, identity.ca_pem)
    return identity
