"""`duplex-serve` and the `--server` thin clients: bad flags, files and servers end with one line and exit 2."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from duplex.cli import chat_main
from duplex.serve.serve_cli import serve_main

ROOT = Path(__file__).resolve().parent.parent
QUESTION = ROOT / "examples/audio/question.wav"


def one_line_error(capsys: pytest.CaptureFixture[str], prog: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith(f"{prog}: error: "), err
    return err[-1]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("argv", "expected"), [
    (["--token-file", "/nonexistent/token"], "--token-file '/nonexistent/token': cannot read"),
    (["--token-file", "/dev/null"], "not a regular file"),
    (["--tls-cert", "/etc/hostname"], "--tls-cert and --tls-key go together"),
    (["--tls-cert", "/etc/hostname", "--tls-key", "/etc/hostname"], "cannot be used"),
    (["--max-sessions", "0"], "--max-sessions 0: must be 1..4096"),
    (["--port", "70000"], "--port 70000: must be 0..65535"),
    (["--threads", "0"], "--threads 0: must be 1..256"),
    (["--set", "backbone=nope"], "backbone"),
])
def test_serve_refuses_bad_flags_with_one_line_before_loading_a_model(
        argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert serve_main(argv) == 2
    assert expected in one_line_error(capsys, "duplex-serve")


def test_an_empty_token_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "token").write_text("\n")
    assert serve_main(["--token-file", str(tmp_path / "token")]) == 2
    assert "first line is empty" in one_line_error(capsys, "duplex-serve")


@pytest.mark.parametrize(("url", "expected"), [
    ("http://localhost:8765", "expected ws://HOST:PORT"),
    ("localhost:8765", "expected ws://HOST:PORT"),
])
def test_chat_refuses_a_server_that_is_not_a_websocket_url(url: str, expected: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert chat_main(["--server", url, "--input", str(QUESTION)]) == 2
    assert expected in one_line_error(capsys, "duplex-chat")


def test_chat_gives_up_on_an_unreachable_server_with_one_line(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    port = closed_port()
    argv = ["--server", f"ws://127.0.0.1:{port}", "--retry-for", "0", "--input", str(QUESTION),
            "--output", str(tmp_path / "out.wav")]
    assert chat_main(argv) == 2
    assert f"ws://127.0.0.1:{port}/: cannot connect" in one_line_error(capsys, "duplex-chat")


def test_chat_checks_its_outputs_before_connecting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "mine.wav"
    copy.write_bytes(QUESTION.read_bytes())
    argv = ["--server", "ws://127.0.0.1:1", "--input", str(copy), "--output", str(copy)]
    assert chat_main(argv) == 2
    assert "would destroy the input" in one_line_error(capsys, "duplex-chat")
    assert copy.read_bytes() == QUESTION.read_bytes()


def test_chat_reads_the_input_before_connecting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--server", "ws://127.0.0.1:1", "--input", str(tmp_path / "missing.wav")]
    assert chat_main(argv) == 2
    assert "missing.wav" in one_line_error(capsys, "duplex-chat")


def test_an_unreachable_server_leaves_existing_outputs_untouched(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    out, events = tmp_path / "out.wav", tmp_path / "events.jsonl"
    out.write_bytes(QUESTION.read_bytes())
    events.write_text("{}\n")
    argv = ["--server", f"ws://127.0.0.1:{closed_port()}", "--retry-for", "0", "--input", str(QUESTION),
            "--output", str(out), "--events", str(events)]
    assert chat_main(argv) == 2
    assert out.read_bytes() == QUESTION.read_bytes() and events.read_text() == "{}\n"


def test_a_servers_default_is_duplex_chats_the_cue_model_and_the_words_unless_the_config_says_otherwise(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Until round 13 duplex-serve left the cue rules off (their cost per conversation); since round
    14 a served conversation is timed as duplex-chat's (docs/serve.md); a file or --set decides."""
    def tiny_fd(key: str, *args: str) -> str:
        assert serve_main(["--print-config", *args]) == 0
        out = capsys.readouterr().out
        tiny = out[out.index("tiny_fd:"):]
        return next(line for line in tiny.splitlines() if line.strip().startswith(f"{key}:")).split("#")[0].strip()

    assert tiny_fd("cues") == "cues: true" and tiny_fd("cue_words") == "cue_words: true"
    assert tiny_fd("cues", "--set", "tiny_fd.cues=false") == "cues: false"
    config = tmp_path / "network.yaml"
    config.write_text("backbone: tiny-fd\ntiny_fd:\n  cues: false\n")
    assert tiny_fd("cues", "--config", str(config)) == "cues: false"
    config.write_text("backbone: tiny-fd\ntiny_fd:\n  cue_words: false\n")
    assert tiny_fd("cue_words", "--config", str(config)) == "cue_words: false"
