"""Sampling presets: `release` is what the reference example does, read from the config; both run on the tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from duplex.backbones import load_model  # noqa: E402
from duplex.backbones.covo.presets import PRESETS, RELEASE_MAX_NEW_TOKENS, Sampling, sampling_of  # noqa: E402
from duplex.backbones.covo.sampling import Sampler, _top_k_top_p  # noqa: E402
from duplex.backbones.covo.turn import CovoTurnBackbone  # noqa: E402
from duplex.config import load_config  # noqa: E402
from tests.covo_fixtures import covo_config, tiny_checkpoint  # noqa: E402
from tests.test_covo_turn import utterance  # noqa: E402

CPU = torch.device("cpu")


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory)


def test_the_release_preset_is_the_turn_mode_default_and_has_the_reference_settings() -> None:
    cfg = load_config(None, overrides={"backbone": "covo"})
    assert cfg.covo.mode == "turn" and cfg.covo.sampling == "release"
    s = sampling_of(cfg.covo)
    # example.py: turn 1 greedy; turn 2 do_sample, temperature 0.5, top_p 0.9, top_k 50; both turns
    # repetition_penalty=1.05 and WindowedRepetitionPenaltyLogitsProcessor(1.05, window_size=8), 2048 tokens
    assert s == Sampling(temperature=0.5, top_k=50, top_p=0.9, sequence_penalty=1.05, window_penalty=1.05,
                         window=8, first_turn_greedy=True)
    assert cfg.covo.max_reply_tokens == RELEASE_MAX_NEW_TOKENS == 2048
    greedy = sampling_of(load_config(None, overrides={"covo": {"sampling": "greedy"}}).covo)
    assert greedy.temperature == 0.0 and greedy.window_penalty == 1.05
    custom = sampling_of(load_config(None, overrides={"covo": {"sampling": "custom", "temperature": 0.7,
                                                               "top_k": 5, "top_p": 0.5}}).covo)
    assert (custom.temperature, custom.top_k, custom.top_p, custom.first_turn_greedy) == (0.7, 5, 0.5, False)


def test_top_k_top_p_keep_what_transformers_keeps() -> None:
    from transformers import TopKLogitsWarper, TopPLogitsWarper

    gen = torch.Generator().manual_seed(1)
    for _ in range(20):
        logits = torch.randn(1, 300, generator=gen) * 3
        ours = _top_k_top_p(logits, 50, 0.9)
        theirs = TopPLogitsWarper(0.9)(None, TopKLogitsWarper(50)(None, logits.clone()))
        assert torch.equal(torch.isinf(ours), torch.isinf(theirs))
        kept = ~torch.isinf(ours)
        assert torch.equal(ours[kept], theirs[kept])


def test_penalties_match_transformers_and_the_release_window_over_the_turns_prompt() -> None:
    from transformers import RepetitionPenaltyLogitsProcessor

    settings = PRESETS["greedy"]
    s = Sampler(vocab_size=40, text_size=30, always=[], settings=settings, interleave=None, device=CPU)
    prompt = [3, 5, 7, 7, 9, 11, 13, 15, 17, 19, 21]
    s.begin(prompt)
    logits = torch.randn(1, 40, generator=torch.Generator().manual_seed(0))
    ids = torch.tensor([prompt])
    want = RepetitionPenaltyLogitsProcessor(1.05)(ids, logits.clone())
    for t in set(prompt[-8:]):  # the release's windowed processor, after transformers' own
        want[0, t] = want[0, t] * 1.05 if want[0, t] < 0 else want[0, t] / 1.05
    tok = s(logits.clone())
    assert int(tok) == int(want.argmax())
    assert bool(s.seen[int(tok)]) and int(s.recent[-1]) == int(tok)


def replies(tiny: Path, sampling: str, seed: int) -> list[list[int]]:
    backbone = load_model(covo_config(tiny, "turn", sampling=sampling, seed=seed, max_reply_tokens=24,
                                      interleave="2,6")).backbone
    assert isinstance(backbone, CovoTurnBackbone)
    chat = backbone.chat
    out = []
    for k in range(3):
        chat.start_reply(utterance(1.0, seed=k))
        reply = chat.reply
        assert reply is not None
        chat.next_units(1000)
        out.append(list(reply.tokens))
    return out


def test_release_decodes_the_first_reply_greedily_and_samples_the_later_ones(tiny: Path) -> None:
    a, b = replies(tiny, "release", seed=1), replies(tiny, "release", seed=2)
    assert a[0] == b[0]  # first reply: greedy, whatever the seed
    assert a[1:] != b[1:]  # later replies: temperature 0.5, top-k 50, top-p 0.9
    assert all(len(r) > 0 for r in a + b)


def test_greedy_decodes_every_reply_the_same_whatever_the_seed(tiny: Path) -> None:
    assert replies(tiny, "greedy", seed=1) == replies(tiny, "greedy", seed=2)
