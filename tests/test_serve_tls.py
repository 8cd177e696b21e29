"""`duplex-serve` over TLS (wss://) with its own certificate: /health, the handshake and a refusal
reason all travel encrypted; a client that does not trust the certificate is refused at once."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from duplex.backbones.base import Model
from duplex.config import Config
from duplex.serve.client import Link, ServerError
from duplex.serve.host import HostFull
from duplex.serve.serve_cli import serve_main
from duplex.serve.server import DuplexServer, ServeOptions

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a certificate")


class FullHost:
    """A host with no free lane: the door is all this test needs (no model is loaded)."""

    name = "full"
    capacity = 1

    def open(self) -> Model:
        raise HostFull("all 1 conversations of this server are taken")

    def close(self, lane: Model) -> None:
        pass

    def usage(self) -> dict[str, int | float]:
        return {"capacity": 1, "used": 1}

    def shutdown(self) -> None:
        pass


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


async def test_health_and_conversations_travel_over_tls(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=str(cert))
    async with DuplexServer(host=FullHost(), config=Config(), options=ServeOptions(port=0, ssl=server_tls)) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=client_tls)
        writer.write(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        body = (await reader.read()).partition(b"\r\n\r\n")[2]
        writer.close()
        assert json.loads(body)["capacity"] == 1
        with pytest.raises(ServerError, match="closed 1013: server full"):
            await Link(f"wss://127.0.0.1:{server.port}/", ssl=client_tls, retry_for_s=0, report=lambda _l: None).open()
        with pytest.raises(ServerError, match="certificate is not trusted") as untrusted:
            await Link(f"wss://127.0.0.1:{server.port}/", ssl=ssl.create_default_context(), retry_for_s=30,
                       report=lambda _l: None).open()
        assert "retried" not in str(untrusted.value)  # refused at once: a certificate does not fix itself


def test_a_key_that_does_not_match_the_certificate_is_one_line(
        certificate: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cert, _ = certificate
    other = tmp_path / "other.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(other), "2048"], check=True, capture_output=True)
    assert serve_main(["--tls-cert", str(cert), "--tls-key", str(other)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("duplex-serve: error: --tls-cert") and "cannot be used" in err[0]
