"""A model that fails: its conversation closes with 1011 and a one-line reason, the server carries on,
and a client that meets the same failure right after every reconnect gives up with one line."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from duplex.backbones.base import Model
from duplex.config import Config
from duplex.serve import protocol
from duplex.serve.client import Link, ServerError
from duplex.serve.conversation import Limits
from duplex.serve.host import SeparateModels
from duplex.serve.remote import FileClient
from duplex.serve.server import DuplexServer, ServeOptions
from duplex.tokens import Token
from tests.fakes import ScriptedBackbone, ToneVocoder
from tests.serve_fixtures import health, wait_for_health

QUESTION = Path(__file__).resolve().parent.parent / "examples/audio/question.wav"


class BrokenBackbone(ScriptedBackbone):
    def step(self, chunk: np.ndarray) -> Sequence[Token]:
        raise RuntimeError("the model fell over")


async def test_a_failing_model_closes_its_conversation_and_the_client_stops_retrying() -> None:
    broken = Model(backbone=BrokenBackbone([]), vocoder=ToneVocoder(), name="broken")  # type: ignore[arg-type]
    reports: list[str] = []
    async with DuplexServer(host=SeparateModels(broken, capacity=2), config=Config(),
                            options=ServeOptions(port=0)) as server:
        client = FileClient(link=Link(f"ws://127.0.0.1:{server.port}/", retry_for_s=30, report=reports.append),
                            input=QUESTION)
        with pytest.raises(ServerError) as failed:
            await client.run()
        figures = await health(server.port)
    message = str(failed.value)
    assert "the conversation failed on the server (RuntimeError); see the server log (code 1011)" in message
    assert message.endswith("5 times in a row right after connecting") and "\n" not in message
    assert len(reports) == 4 and all("connection lost (1011" in r for r in reports)  # told, then retried
    assert figures["http_status"] == 200 and figures["used"] == 0 and figures["accepted"] == 5


async def test_a_client_that_sends_but_never_reads_is_closed_before_its_queue_grows() -> None:
    quiet = Model(backbone=ScriptedBackbone([]), vocoder=ToneVocoder(), name="scripted")  # type: ignore[arg-type]
    limits = Limits(frames_per_s=1e6, frame_burst=1_000_000, outbox_backlog=50)
    async with DuplexServer(host=SeparateModels(quiet, capacity=1), config=Config(),
                            options=ServeOptions(port=0, limits=limits)) as server:
        frame = b"\x00" * protocol.FRAME_BYTES
        async with connect(f"ws://127.0.0.1:{server.port}/", subprotocols=[protocol.SUBPROTOCOL],  # type: ignore[list-item]
                           compression=None, max_queue=1) as ws:  # reads (almost) nothing back
            with contextlib.suppress(ConnectionClosed):
                for _ in range(20_000):  # about 100 MB if the server queued it all
                    await ws.send(frame)
            figures = await wait_for_health(server.port, lambda h: h["closed_bad_input"] == 1)
            with contextlib.suppress(ConnectionClosed):  # now read: what was sent, then the close frame
                async for _ in ws:
                    pass
    assert ws.close_code == protocol.SLOW_READER and "reads nothing back" in (ws.close_reason or "")
    assert figures["closed_bad_input"] == 1
