"""Scale-out on HAProxy: two `duplex-serve` behind the documented config (least connections, health
checks on /health); one server killed (or drained) mid-conversation, its clients are told and
reconnect through HAProxy to the other, and the other server's clients never notice."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from duplex.serve.client import Link
from duplex.serve.remote import FileClient
from tests.serve_fixtures import ROOT, ServerProcess, comparable, health, pcm, read_jsonl, solo_run, wait_for_health

# slow: two model loads (17 s each on a 2-core machine shared with other test runs) and a real-time
# conversation through the proxy, twice (killed, drained): 46 s each on a quiet machine, 59-75 s each
# under the other test runs' load, 92 s for the pair at best: over the one-minute budget of `make test`.
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy (apt-get install haproxy)")]

CONFIG = ROOT / "examples/serve/haproxy.cfg"
SOURCE = ROOT / "examples/audio/question.wav"  # the model answers from 4.5 s; a server is killed then
CLIENTS = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def haproxy_config(front: int, s1: int, s2: int) -> str:
    """The documented config on this test's ports."""
    text = CONFIG.read_text()
    for documented, actual in (("127.0.0.1:8080", front), ("127.0.0.1:8765", s1), ("127.0.0.1:8766", s2)):
        assert documented in text
        text = text.replace(documented, f"127.0.0.1:{actual}")
    return text


async def through_haproxy(port: int, timeout: float = 30.0) -> None:
    """Wait until HAProxy answers /health (from either server)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if (await health(port))["http_status"] == 200:
                return
        except (OSError, ValueError, IndexError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("haproxy did not forward /health in time")
        await asyncio.sleep(0.1)


@pytest.mark.parametrize(("sig", "told"), [(signal.SIGKILL, 1006), (signal.SIGTERM, 1001)], ids=["killed", "drained"])
async def test_a_stopped_servers_clients_reconnect_through_haproxy_to_the_other(
        tmp_path: Path, sig: signal.Signals, told: int) -> None:
    """SIGKILL: the connection drops mid-answer (1006). SIGTERM (a rolling restart): the server drains,
    each conversation ends after the model's turn with 1001. Either way the clients reconnect."""
    s1 = ServerProcess(tmp_path, "--name", "s1", "--max-sessions", "32", "--no-batched", name="s1")
    s2 = ServerProcess(tmp_path, "--name", "s2", "--max-sessions", "32", "--no-batched", name="s2")
    with contextlib.ExitStack() as servers:
        for server in (s1, s2):
            servers.callback(server.__exit__)
            server.start()  # both load their model while the solo run is computed
        await solo_run(SOURCE, tmp_path / "solo.wav", tmp_path / "solo.jsonl")
        s1.wait_listening()
        s2.wait_listening()
        front = free_port()
        (tmp_path / "haproxy.cfg").write_text(haproxy_config(front, s1.port, s2.port))
        with (tmp_path / "haproxy.log").open("wb") as log:
            proxy = subprocess.Popen(["haproxy", "-db", "-f", str(tmp_path / "haproxy.cfg")], stdout=log, stderr=log)
        try:
            await through_haproxy(front)
            await wait_for_health(s1.port, lambda h: True)
            clients = []
            runs = []
            for i in range(CLIENTS):  # one at a time, so least-connections sees each
                client = FileClient(link=Link(f"ws://127.0.0.1:{front}/", retry_for_s=20, report=lambda _l: None),
                                    input=SOURCE, output=tmp_path / f"c{i}.wav", events=tmp_path / f"c{i}.jsonl")
                clients.append(client)
                runs.append(asyncio.create_task(client.run()))
                while not client.servers:
                    await asyncio.sleep(0.02)
            assert sorted(c.servers[0] for c in clients) == ["s1", "s1", "s2", "s2"]  # least connections
            while not any(line.get("to") == "SPEAKING" for line in clients[0].events):
                await asyncio.sleep(0.02)
            assert s1.proc is not None
            s1.proc.send_signal(sig)  # mid-answer
            results = await asyncio.gather(*runs)
            if sig == signal.SIGTERM:
                assert s1.proc.wait(30) == 0  # drained, then exited cleanly
            after = await health(s2.port)
        finally:
            proxy.send_signal(signal.SIGTERM)
            proxy.wait(10)
    assert after["used"] == 0 and after["accepted"] == CLIENTS  # two first, then the two that moved
    for i, (client, result) in enumerate(zip(clients, results, strict=True)):
        if client.servers[0] == "s2":  # never noticed
            assert result.reconnects == 0 and client.servers == ["s2"]
            assert (pcm(tmp_path / f"c{i}.wav") == pcm(tmp_path / "solo.wav")).all()
            assert comparable(client.events) == comparable(read_jsonl(tmp_path / "solo.jsonl"))
            continue
        assert result.reconnects == 1 and client.servers == ["s1", "s2"]
        link = [line for line in client.events if line["type"] == "link"]
        assert [line["what"] for line in link] == ["lost", "reconnected"] and link[0]["code"] == told
        after_reconnect = client.events[client.events.index(link[1]) + 1:]
        assert after_reconnect[0]["what"] == "started" and after_reconnect[-1]["what"] == "stopped"
        assert after_reconnect[0]["t"] >= link[1]["t"]  # one timeline: the new conversation starts where it joined
        assert pcm(tmp_path / f"c{i}.wav").size >= len(client.frames) * 2560  # aligned with the input, gap silent
