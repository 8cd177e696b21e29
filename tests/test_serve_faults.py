"""A model that fails: its conversation closes with 1011 and a one-line reason, the server carries on,
and a client that meets the same failure right after every reconnect gives up with one line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from duplex.backbones.base import Model
from duplex.config import Config
from duplex.serve.client import Link, ServerError
from duplex.serve.host import SeparateModels
from duplex.serve.remote import FileClient
from duplex.serve.server import DuplexServer, ServeOptions
from duplex.tokens import Token
from tests.fakes import ScriptedBackbone, ToneVocoder
from tests.serve_fixtures import health

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
