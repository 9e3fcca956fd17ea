"""An https image server on 127.0.0.1 with a throw-away self-signed certificate, for media URLs.

The api accepts only ``https://`` media, so tests serve images over TLS: the certificate (for
``127.0.0.1`` and ``localhost``) is written to :attr:`ca_file`, which the operator trusts through
``SOCIALPUB_MEDIA_CA_FILE``. ``/img/<name>.jpg`` is a JPEG, ``.png`` a PNG; ``/big.jpg`` is
larger than any cap; ``/redirect?to=<url>`` redirects.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.fakes.base import FakeServer

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 200 + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


def write_self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "socialpub test media")])
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
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "media-cert.pem", directory / "media-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class MediaServer(FakeServer):
    name = "media"

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.ca_file, key_file = write_self_signed(directory)
        self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ssl.load_cert_chain(self.ca_file, key_file)

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/img/{name}", self.image)
        app.router.add_get("/big.jpg", self.big)
        app.router.add_get("/redirect", self.redirect)

    def start(self) -> MediaServer:
        self._thread.start()

        async def _start() -> str:
            app = web.Application(middlewares=[self._middleware])
            self.routes(app)
            self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._ssl)
            await site.start()
            server = site._server
            assert server is not None
            port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            return f"https://127.0.0.1:{port}"

        self.url = self.call(_start())
        return self

    def jpeg(self, name: str = "photo") -> str:
        return f"{self.url}/img/{name}.jpg"

    async def image(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name.endswith(".png"):
            return web.Response(body=PNG, content_type="image/png")
        if name.endswith(".txt"):
            return web.Response(text="not an image")
        return web.Response(body=JPEG, content_type="image/jpeg")

    async def big(self, request: web.Request) -> web.Response:
        return web.Response(body=JPEG + b"\x00" * (9 * 1024 * 1024), content_type="image/jpeg")

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])
