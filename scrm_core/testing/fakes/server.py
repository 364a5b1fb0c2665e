"""Run a fake service (any ASGI app) with uvicorn on 127.0.0.1 in a background thread.

Used by adapter tests, benchmarks and the fakes' ``python -m`` entry points::

    with FakeServer(FakeHubSpot().app) as server:
        client = HubSpot(access_token="t", host=server.url)

The socket is bound before the thread starts (port 0: the OS picks a free port), so
``url`` is valid as soon as the constructor returns and no test ever races the server's
start-up or reaches beyond loopback.

``tls=True`` serves HTTPS with a certificate made on the spot for 127.0.0.1 (for clients
that only speak ``https://``, such as simple-salesforce); ``ca_file`` is the PEM file a
client must trust (``requests.Session().verify = server.ca_file``).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

__all__ = ["FakeServer"]


class FakeServer:
    """An ASGI app served on ``127.0.0.1:<port>`` until :meth:`stop` (or the ``with`` block ends)."""

    def __init__(self, app: Any, *, port: int = 0, tls: bool = False) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(128)
        self.port: int = self.sock.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"{'https' if tls else 'http'}://{self.host}"
        self.ca_file: str | None = None
        ssl: dict[str, Any] = {}
        if tls:
            self._tls_dir = tempfile.TemporaryDirectory(prefix="scrm-fake-tls-")
            cert, key = _self_signed_certificate(Path(self._tls_dir.name))
            self.ca_file = str(cert)
            ssl = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
            # A client still holding a keep-alive connection must not hold up stop().
            timeout_graceful_shutdown=1,
            **ssl,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._serve, name=f"fake-server-{self.port}", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, valid for a day, and its key (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scrm fake service")])
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
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path
