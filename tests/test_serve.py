"""`duplex-serve` (its default host: batched tiny-fd) with eight scripted WebSocket clients: each hears
exactly its solo offline run, while the door refuses a ninth beyond the cap, a wrong token and
malformed frames (one line, that connection only); SIGTERM (one model per conversation here) lets
every conversation finish the model's turn, then closes it."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from duplex.serve import protocol
from duplex.serve.client import Link, ServerError
from duplex.serve.remote import FileClient
from tests.serve_fixtures import (
    ROOT,
    ServerProcess,
    comparable,
    health,
    pcm,
    read_jsonl,
    send_and_close_reason,
    solo_run,
    wait_for_health,
)

INPUTS = [ROOT / "examples/audio/conversation.wav", ROOT / "examples/audio/question.wav"]
TOKEN = "tok-3f9a1c"
CLIENTS = 8


def quiet(_line: str) -> None:
    pass


@pytest.fixture(scope="module")
def solo(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, tuple[Path, Path]]:
    """The local offline run of each input: (WAV, events)."""
    folder = tmp_path_factory.mktemp("solo")
    runs = {}
    for source in INPUTS:
        wav, events = folder / f"{source.stem}.wav", folder / f"{source.stem}.jsonl"
        asyncio.run(solo_run(source, wav, events))
        runs[source] = (wav, events)
    return runs


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    with ServerProcess(tmp_path, "--max-sessions", str(CLIENTS + 1), "--token-file", str(token_file)) as proc:
        yield proc
    assert "Warning" not in proc.stderr.read_text()


async def test_eight_clients_each_hear_their_solo_run_while_the_door_refuses_the_rest(
        server: ServerProcess, solo: dict[Path, tuple[Path, Path]], tmp_path: Path) -> None:
    # The eighth client is `duplex-kiosk --server ... --once`: its events are JSON lines on stdout.
    kiosk_source = INPUTS[(CLIENTS - 1) % len(INPUTS)]
    kiosk = subprocess.Popen(
        [sys.executable, "-m", "duplex.kiosk_cli", "--server", server.url, "--token-file", str(tmp_path / "token"),
         "--input", str(kiosk_source), "--output", str(tmp_path / "kiosk.wav"), "--once"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    clients = []
    for i in range(CLIENTS - 1):
        source = INPUTS[i % len(INPUTS)]
        clients.append(FileClient(link=Link(server.url, token=TOKEN, retry_for_s=0, report=quiet), input=source,
                                  output=tmp_path / f"client{i}.wav", events=tmp_path / f"client{i}.jsonl"))
    runs = [asyncio.create_task(client.run()) for client in clients]
    full = await wait_for_health(server.port, lambda h: h["used"] == CLIENTS)
    assert full["used"] == CLIENTS, full
    for i, client in enumerate(clients):
        while not client.servers:  # its hello has arrived: the session runs
            await asyncio.sleep(0.02)
        client.session.ping(f"c{i}")  # a command that changes nothing, answered on the same connection

    # The ninth slot: malformed input closes only the connection that sent it, with one line.
    bad = {
        "odd byte count": [b"\x00" * 5121],
        "short frame": [b"\x00" * 100],
        "not JSON": ["hello"],
        "unknown command": [json.dumps({"cmd": "dance"})],
        "a key beyond cmd and id": [json.dumps({"cmd": "mute", "path": "/etc/passwd"})],
    }
    closes = {what: await send_and_close_reason(server.url, TOKEN, messages) for what, messages in bad.items()}
    assert closes["odd byte count"] == (protocol.BAD_FRAME, "frame 0: 5121 bytes (an odd byte count: not PCM16); "
                                        "a frame is 160 ms of 16 kHz mono PCM16, 5120 bytes")
    assert closes["short frame"][0] == protocol.BAD_FRAME and "100 bytes" in closes["short frame"][1]
    assert closes["not JSON"][0] == protocol.BAD_TEXT and "malformed JSON" in closes["not JSON"][1]
    assert closes["unknown command"][0] == protocol.BAD_TEXT and '"dance"' in closes["unknown command"][1]
    assert "path" in closes["a key beyond cmd and id"][1]
    for _code, reason in closes.values():
        assert "\n" not in reason and len(reason.encode()) <= protocol.MAX_REASON_BYTES

    # The cap: the ninth slot held, the tenth conversation is refused with a reason naming the cap.
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with connect(server.url, subprotocols=[protocol.SUBPROTOCOL],  # type: ignore[list-item]
                       additional_headers=headers, compression=None) as holder:
        protocol.check_hello(await holder.recv())
        code, reason = await send_and_close_reason(server.url, TOKEN, [])
        assert code == protocol.TRY_AGAIN
        assert reason.startswith("server full") and f"--max-sessions {CLIENTS + 1}" in reason

    # A wrong token never reaches a conversation: HTTP 401, one line, exit status 2 from the CLI.
    with pytest.raises(ServerError, match="HTTP 401 missing or unknown token"):
        await Link(server.url, token="wrong", retry_for_s=0, report=quiet).open()

    results = await asyncio.gather(*runs)
    kiosk_out, kiosk_err = await asyncio.to_thread(kiosk.communicate, timeout=60)
    assert kiosk.returncode == 0, kiosk_err
    wav, events = solo[kiosk_source]
    assert (pcm(tmp_path / "kiosk.wav") == pcm(wav)).all()
    kiosk_events = [json.loads(line) for line in kiosk_out.splitlines()]
    assert comparable([e for e in kiosk_events if e["type"] != "log"]) == comparable(read_jsonl(events))
    for i, (client, result) in enumerate(zip(clients, results, strict=True)):
        wav, events = solo[INPUTS[i % len(INPUTS)]]
        assert result.reconnects == 0
        assert result.replies == [{"type": "reply", "id": f"c{i}", "ok": True, "cmd": "ping"}]
        assert (pcm(tmp_path / f"client{i}.wav") == pcm(wav)).all() and pcm(wav).size == result.steps * 2560
        assert comparable(read_jsonl(tmp_path / f"client{i}.jsonl")) == comparable(read_jsonl(events))
        assert comparable(client.events) == comparable(read_jsonl(events))

    figures = await health(server.port)
    assert figures["used"] == 0 and figures["accepted"] == CLIENTS + len(bad) + 1
    assert figures["refused_full"] == 1 and figures["refused_token"] == 1
    assert figures["closed_bad_input"] == len(bad)


async def test_sigterm_lets_each_conversation_finish_the_models_turn_then_closes_it(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, "--max-sessions", "2", "--no-batched") as server:
        source = INPUTS[0]  # the model answers from 4.5 s and is cut in on at 7.2 s
        clients = [FileClient(link=Link(server.url, retry_for_s=0, report=quiet), input=source,
                              output=tmp_path / f"drain{i}.wav") for i in range(2)]
        runs = [asyncio.create_task(client.run()) for client in clients]
        while not any(line.get("to") == "SPEAKING" for line in clients[0].events):
            await asyncio.sleep(0.02)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        outcomes = await asyncio.gather(*runs, return_exceptions=True)
        exit_code = server.proc.wait(60)
        with pytest.raises(OSError):  # no longer listening: a new conversation goes elsewhere
            await asyncio.open_connection("127.0.0.1", server.port)
    assert exit_code == 0
    for i, (client, outcome) in enumerate(zip(clients, outcomes, strict=True)):
        assert isinstance(outcome, ServerError)  # reconnecting is refused: nothing listens any more
        lost = [line for line in client.events if line.get("type") == "link"]
        assert lost[0]["code"] == protocol.GOING_AWAY and lost[0]["reason"].startswith("server shutting down")
        session = [line for line in client.events if line.get("type") != "link"]
        stop = next(i for i, line in enumerate(session) if line["type"] == "command" and line["command"] == "stop")
        states = [line["to"] for line in session[:stop] if line["type"] == "state"]
        assert states[-1] == "LISTENING"  # stopped between turns, never inside one
        if i == 0:  # SIGTERM came while it spoke: the turn ended (the barge-in at 7.2 s), then the stop
            assert "SPEAKING" in states
        assert session[-1]["type"] == "session" and session[-1]["what"] == "stopped"
    lines = server.lines()
    assert [line["what"] for line in lines if line.get("type") == "serve"] == ["listening", "draining", "stopped"]
