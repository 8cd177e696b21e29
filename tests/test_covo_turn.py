"""Turn mode: Covo's dialog format in the context, replies cut where the user stopped hearing them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from audio_io.wav import load_mono16k  # noqa: E402
from duplex.backbones import load_model  # noqa: E402
from duplex.backbones.covo.chat import ChatContext  # noqa: E402
from duplex.backbones.covo.turn import CovoTurnBackbone  # noqa: E402
from duplex.backbones.floor.tinyfd import TinyFdFloor  # noqa: E402
from duplex.backbones.floor.vad import VadFloor  # noqa: E402
from duplex.tokens import Kind  # noqa: E402
from tests.covo_fixtures import covo_config, tiny_checkpoint  # noqa: E402


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory)


def turn(tiny: Path, **covo: object) -> CovoTurnBackbone:
    backbone = load_model(covo_config(tiny, "turn", **covo)).backbone
    assert isinstance(backbone, CovoTurnBackbone)
    return backbone


def utterance(seconds: float = 1.3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
            + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def context_tail(chat: ChatContext, start: int, length: int) -> torch.Tensor:
    return chat.decoder.hist[start : start + length]


def test_the_user_turn_is_prefilled_in_covos_dialog_format(tiny: Path) -> None:
    chat = turn(tiny).chat
    prefix = chat.decoder.length
    assert torch.equal(chat.decoder.hist[:prefix], chat.decoder.embed(chat.system_ids))
    chat.start_reply(utterance(1.3))
    reply = chat.reply
    assert reply is not None
    frames = 9  # 1.3 s -> one frame per started 160 ms
    ids = chat.vocab.encode(f"<|im_start|>user\n<|begofcAUDIO|>{'<|cAUDIO|>' * frames}<|endofcAUDIO|>"
                            "<|im_end|>\n<|im_start|>assistant\n")
    assert chat.decoder.length == prefix + len(ids) - 1 and reply.prompt_last == ids[-1]
    fed = chat.decoder.hist[prefix : chat.decoder.length]
    text = [i for i, t in enumerate(ids[:-1]) if t != chat.vocab.audio_frame]
    assert torch.equal(fed[text], chat.decoder.embed([ids[i] for i in text]))
    with torch.no_grad():
        want = chat.encoder(utterance(1.3))
    audio_rows = [i for i, t in enumerate(ids) if t == chat.vocab.audio_frame]
    torch.testing.assert_close(fed[audio_rows], want)


def test_a_cut_keeps_the_reply_up_to_the_last_heard_unit_then_closes_it(tiny: Path) -> None:
    chat = turn(tiny, interleave="2,3").chat
    chat.start_reply(utterance())
    reply = chat.reply
    assert reply is not None
    units = chat.next_units(4) + chat.next_units(4)
    assert len(units) == 8
    chat.cut(5)
    keep = reply.unit_at[4] + 1
    expected = [*reply.tokens[:keep], *chat.close_ids]
    assert chat.decoder.length == reply.start + len(expected)
    assert torch.equal(context_tail(chat, reply.start, len(expected)), chat.decoder.embed(expected))
    assert chat.reply is None


def test_a_cut_before_any_unit_was_heard_leaves_an_empty_closed_reply(tiny: Path) -> None:
    chat = turn(tiny, interleave="2,3").chat
    chat.start_reply(utterance())
    reply = chat.reply
    assert reply is not None
    chat.next_units(3)
    chat.cut(0)
    expected = [reply.prompt_last, *chat.close_ids]
    assert chat.decoder.length == reply.start - 1 + len(expected)
    assert torch.equal(context_tail(chat, reply.start - 1, len(expected)), chat.decoder.embed(expected))


def test_a_reply_that_ends_by_itself_is_kept_whole(tiny: Path) -> None:
    chat = turn(tiny, interleave="0,1", max_reply_tokens=10).chat
    chat.start_reply(utterance())
    reply = chat.reply
    assert reply is not None
    units = [u for _ in range(4) for u in chat.next_units(4)]
    assert len(units) == 10 and chat.reply is None
    expected = [*reply.tokens, *chat.close_ids]
    assert chat.decoder.length == reply.start + len(expected)
    assert torch.equal(context_tail(chat, reply.start, len(expected)), chat.decoder.embed(expected))


def test_a_forced_interleave_gives_five_text_then_fifteen_speech_tokens(tiny: Path) -> None:
    chat = turn(tiny, interleave="5,15", max_reply_tokens=40).chat
    chat.start_reply(utterance())
    reply = chat.reply
    assert reply is not None
    chat.next_units(15)
    kinds = [chat.vocab.is_speech(t) for t in reply.tokens[:20]]
    assert kinds == [False] * 5 + [True] * 15


def test_old_turns_are_dropped_when_the_context_is_full_but_the_system_prompt_stays(tiny: Path) -> None:
    chat = turn(tiny, interleave="1,3", context_tokens=160, max_reply_tokens=24).chat
    system = chat.decoder.embed(chat.system_ids)
    for k in range(6):
        chat.start_reply(utterance(0.8, seed=k))
        while chat.reply is not None:
            chat.next_units(4)
        assert chat.decoder.length <= chat.decoder.capacity
    assert chat.refills >= 2
    assert torch.equal(chat.decoder.hist[: chat.prefix], system)
    assert all(chat.prefix <= b < chat.decoder.length for b in chat.turn_starts)


def test_shift_carries_three_units_and_the_text_arrives_in_a_free_slot(tiny: Path, speech) -> None:
    b = turn(tiny, interleave="2,6", max_reply_tokens=16)
    speech = load_mono16k(speech("Hello there, how are you?"))
    silence = np.zeros(2560, np.float32)
    steps = [speech[i : i + 2560] for i in range(0, speech.size - 2559, 2560)] + [silence] * 12
    out = [list(b.step(chunk)) for chunk in steps]
    kinds = [[t.kind for t in tokens] for tokens in out]
    shift = next(i for i, k in enumerate(kinds) if Kind.SHIFT in k)
    assert kinds[shift] == [Kind.SHIFT, Kind.AUDIO, Kind.AUDIO, Kind.AUDIO]
    assert any(Kind.EOT in k for k in kinds[shift:])
    texts = [t.text for tokens in out for t in tokens if t.kind is Kind.TEXT]
    assert len(texts) == 1 and texts[0]
    assert b.last_shift_to_unit_ms is not None and b.last_shift_to_unit_ms > 0


def test_turn_mode_composes_a_floor_policy_and_cannot_say(tiny: Path) -> None:
    """`policy.floor: auto` (the default) is tiny-fd's timing in turn mode (round 14); vad names the VAD rules."""
    model = load_model(covo_config(tiny, "turn"))
    assert not model.can_say
    assert isinstance(model.backbone.floor, TinyFdFloor)
    cfg = covo_config(tiny, "turn")
    vad = load_model(dataclasses.replace(cfg, policy=dataclasses.replace(cfg.policy, floor="vad")))
    assert isinstance(vad.backbone.floor, VadFloor)


def test_tiny_fd_as_the_floor_times_covos_replies(tiny: Path, speech) -> None:
    cfg = covo_config(tiny, "turn", interleave="2,6", max_reply_tokens=16)
    cfg = dataclasses.replace(cfg, policy=dataclasses.replace(cfg.policy, floor="tiny-fd"))
    b = load_model(cfg).backbone
    assert isinstance(b, CovoTurnBackbone) and isinstance(b.floor, TinyFdFloor)
    question = load_mono16k(speech("What time does the museum open on Sundays?"))
    question = np.concatenate([question, np.zeros(-question.size % 2560 + 2560 * 20, np.float32)])
    kinds = [[t.kind for t in b.step(question[i : i + 2560])] for i in range(0, question.size, 2560)]
    shift = next(i for i, k in enumerate(kinds) if Kind.SHIFT in k)
    assert kinds[shift] == [Kind.SHIFT, Kind.AUDIO, Kind.AUDIO, Kind.AUDIO]  # Covo's units, tiny-fd's timing
    assert shift * 0.16 > question.size / 16000 - 20 * 0.16 - 0.5
    assert any(Kind.EOT in k for k in kinds[shift:])
    assert b.chat.turn_starts  # the question went into Covo's context
