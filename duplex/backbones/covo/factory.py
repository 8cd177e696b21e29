"""`covo:` config -> Model: device and dtype, checkpoint, decoder, mode, vocoder.

The only module that reads the config section; everything it builds takes plain arguments, so
tests and the benchmark can assemble the same parts differently (e.g. eager and optimised
decoders over one set of weights).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from duplex.backbones.base import Model, Vocoder
from duplex.backbones.covo.chat import ChatContext
from duplex.backbones.covo.config import CovoConfig
from duplex.backbones.covo.decoder import DecoderBase, DynamicDecoder, StaticDecoder
from duplex.backbones.covo.deps import check_versions
from duplex.backbones.covo.features import StreamingEncoder, UtteranceEncoder
from duplex.backbones.covo.loader import Checkpoint, load_checkpoint
from duplex.backbones.covo.native import CovoNativeBackbone
from duplex.backbones.covo.presets import sampling_of
from duplex.backbones.covo.sampling import GREEDY, Sampler
from duplex.backbones.covo.t2w_stream import StreamingToken2Wav, StreamSettings, Synth, VoicePrompt
from duplex.backbones.covo.turn import CovoTurnBackbone
from duplex.backbones.covo.vocab import Vocab, checkpoint_vocab
from duplex.backbones.covo.vocoder import load_token2wav, silent
from duplex.backbones.files import read_json_object
from duplex.backbones.floor import make_floor
from duplex.backbones.registry import Resolver
from duplex.backbones.tiny_fd.config import TinyFdConfig
from duplex.config import PolicyConfig
from duplex.errors import CheckpointError, ConfigError, one_line

log = logging.getLogger(__name__)

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
# `policy.floor: auto` in turn mode: tiny-fd's timing (the cue model and the words), which on held-out
# voices starts in 2 of 57 thinking pauses where the VAD rules start in 29 (docs/policy.md, round 14)
COVO_FLOOR = "tiny-fd"


@dataclasses.dataclass(frozen=True, slots=True)
class Runtime:
    device: torch.device
    dtype: torch.dtype
    optimise: str  # none | graphs | compile


def runtime(cfg: CovoConfig) -> Runtime:
    """Resolve auto settings and refuse impossible combinations, naming the key."""
    try:
        device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available() else
                              "cpu" if cfg.device == "auto" else cfg.device)
    except RuntimeError as exc:
        raise ConfigError(f"covo.device = {cfg.device!r} is not a torch device") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"covo.device = {cfg.device!r}, but torch sees no CUDA device")
    dtype = DTYPES.get(cfg.dtype) or (torch.bfloat16 if device.type == "cuda" else torch.float32)
    optimise = cfg.optimise if cfg.optimise != "auto" else "graphs" if device.type == "cuda" else "none"
    if optimise == "graphs" and device.type != "cuda":
        raise ConfigError("covo.optimise = graphs needs a CUDA device (use none or compile on CPU)")
    return Runtime(device, dtype, optimise)


def build_model(c: CovoConfig, policy: PolicyConfig, tiny_fd: TinyFdConfig | None, resolve: Resolver) -> Model:
    check_versions()
    rt = runtime(c)
    if rt.device.type == "cpu" and c.cpu_threads:
        torch.set_num_threads(c.cpu_threads)  # process-wide: torch has no per-model setting
    torch.manual_seed(c.seed)
    ckpt = load_checkpoint(resolve(c.checkpoint), device=rt.device, dtype=rt.dtype)
    vocab = checkpoint_vocab(ckpt)
    vocoder = make_vocoder(c, resolve, rt)
    if c.mode == "native":
        backbone: Any = native_backbone(c, ckpt, vocab, rt)
    else:
        chat = chat_context(c, ckpt, vocab, rt)
        floor = make_floor(policy, tiny_fd=tiny_fd, resolve=resolve, threads=0,  # covo sets torch's threads
                           auto=COVO_FLOOR)
        backbone = CovoTurnBackbone(floor, chat=chat, level=lambda: float(getattr(vocoder, "level", 0.0)))
        if isinstance(vocoder, StreamingToken2Wav):
            vocoder.ahead = lambda: units_ahead(chat)  # decode ahead of the speaker
    name = f"covo/{c.mode}/{c.cache}" + (f"+{rt.optimise}" if c.cache == "static" and rt.optimise != "none" else "")
    return Model(backbone=backbone, vocoder=vocoder, name=name, can_say=False)


def sampler(c: CovoConfig, vocab: Vocab, vocab_size: int, rt: Runtime, *, turn: bool) -> Sampler:
    """Turn mode: the `covo.sampling` preset; native mode: `covo.temperature` alone (no reference to follow)."""
    always = [vocab.id(c.eos_token, "covo.eos_token")] if turn else []
    settings = sampling_of(c) if turn else dataclasses.replace(GREEDY, temperature=c.temperature)
    return Sampler(vocab_size=vocab_size, text_size=vocab.text_size, always=always, settings=settings,
                   interleave=parse_interleave(c.interleave) if turn else None, device=rt.device)


def decoder(c: CovoConfig, ckpt: Checkpoint, s: Sampler, rt: Runtime) -> DecoderBase:
    llm = ckpt.model.llm
    if c.cache == "dynamic":
        return DynamicDecoder(llm, capacity=c.context_tokens, sampler=s, device=rt.device, dtype=rt.dtype)
    return StaticDecoder(llm, capacity=c.context_tokens, sampler=s, device=rt.device, dtype=rt.dtype,
                         optimise=rt.optimise)


def native_backbone(c: CovoConfig, ckpt: Checkpoint, vocab: Vocab, rt: Runtime) -> CovoNativeBackbone:
    vocab.set_controls({k: getattr(c, k) for k in ("think_token", "shift_token", "break_token", "eot_token")})
    dec = decoder(c, ckpt, sampler(c, vocab, ckpt.model.vocab_size, rt, turn=False), rt)
    try:
        encoder = StreamingEncoder(ckpt.model, rt.device, rt.dtype, c.encoder_window_steps)
        return CovoNativeBackbone(decoder=dec, encoder=encoder, vocab=vocab,
                                  prefix=c.native_prefix.replace("{system}", c.system_prompt),
                                  refill_keep=c.refill_keep_tokens,
                                  break_id=vocab.id(c.break_token, "covo.break_token"),
                                  optimise="none" if c.cache == "dynamic" else rt.optimise)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def chat_context(c: CovoConfig, ckpt: Checkpoint, vocab: Vocab, rt: Runtime) -> ChatContext:
    dec = decoder(c, ckpt, sampler(c, vocab, ckpt.model.vocab_size, rt, turn=True), rt)
    chat = ChatContext(decoder=dec, encoder=UtteranceEncoder(ckpt.model, rt.device, rt.dtype), vocab=vocab,
                       system=c.system_prompt, eos=c.eos_token, max_reply_tokens=c.max_reply_tokens,
                       burst=c.burst_tokens)
    with torch.no_grad():
        dec.prepare(False, c.burst_tokens)
    return chat


def make_vocoder(c: CovoConfig, resolve: Resolver, rt: Runtime) -> Vocoder:
    if not c.vocoder_repo:
        return silent()
    if not c.vocoder_checkpoint:
        raise ConfigError("covo.vocoder_checkpoint must name token2wav's model.pt when covo.vocoder_repo is set")
    repo, checkpoint = resolve(c.vocoder_repo), resolve(c.vocoder_checkpoint)
    config = resolve(c.vocoder_config) if c.vocoder_config else None
    prompt_dir = resolve(c.vocoder_prompt_dir) if c.vocoder_prompt_dir else None
    device = c.vocoder_device or str(rt.device)
    if c.vocoder_engine == "stream":
        return stream_vocoder(c, config or repo / "token2wav" / "config.json", checkpoint,
                              prompt_dir or repo / "token2wav" / "prompt", device)
    return load_token2wav(repo, checkpoint=checkpoint, config=config, prompt_dir=prompt_dir, device=device,
                          context_units=c.vocoder_context_units)


def stream_settings(c: CovoConfig) -> StreamSettings:
    return StreamSettings(first_chunk=c.vocoder_first_chunk, max_chunk=c.vocoder_max_chunk,
                          left_context=c.vocoder_context_units, lookahead=c.vocoder_lookahead,
                          crossfade_ms=c.vocoder_crossfade_ms, steps=c.vocoder_ode_points,
                          prompt_units=c.vocoder_prompt_units)


def stream_vocoder(c: CovoConfig, config: Path, checkpoint: Path, prompt_dir: Path, device: str) -> StreamingToken2Wav:
    """Our token2wav (t2w_model) with the release's weights, streamed (t2w_stream): no release code imported."""
    from duplex.backbones.covo.t2w_model import Token2Wav, load_release_weights

    for path, what in ((config, "token2wav config"), (checkpoint, "token2wav weights")):
        if not path.is_file():
            raise CheckpointError(path, f"missing ({what})")
    if not prompt_dir.is_dir():
        raise CheckpointError(prompt_dir, "missing (token2wav voice prompt folder)")
    try:
        model = Token2Wav(read_json_object(config, "token2wav needs its config.json"))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(config, f"not a token2wav config ({one_line(exc)})") from exc
    ignored = load_release_weights(model, checkpoint)
    if ignored:
        log.warning("covo: %s: %d tensors token2wav does not use, ignored: %s", checkpoint, len(ignored),
                    ", ".join(ignored[:5]))
    try:
        prompt = VoicePrompt.load(prompt_dir)
    except (OSError, ValueError) as exc:
        raise CheckpointError(prompt_dir, f"cannot read the voice prompt ({one_line(exc)})") from exc
    stats = checkpoint.parent / "global_mean_var.npy"
    dev = torch.device(device)
    synth = Synth(model, prompt, stream_settings(c), device=dev, dtype=torch.bfloat16 if dev.type == "cuda"
                  else torch.float32, stats=np.load(stats) if stats.is_file() else None)
    return StreamingToken2Wav(synth, background=True)  # the next chunk decodes while the speaker plays


def units_ahead(chat: ChatContext) -> tuple[list[int], bool]:
    """Speech units the LLM has decoded but the speaker has not asked for yet, and whether the reply ended."""
    reply = chat.reply
    if reply is None:
        return [], True
    try:
        return list(reply.ready), reply.done
    except RuntimeError:  # the deque changed under us (another thread): nothing ahead this time
        return [], False


def parse_interleave(text: str) -> tuple[int, int] | None:
    if not text.strip():
        return None
    try:
        a, b = (int(x) for x in text.split(","))
    except ValueError as exc:
        raise ConfigError(f"covo.interleave = {text!r} is not 'TEXT,SPEECH' (e.g. '5,15')") from exc
    if a < 0 or b < 1:
        raise ConfigError(f"covo.interleave = {text!r} needs TEXT >= 0 and SPEECH >= 1")
    return a, b

