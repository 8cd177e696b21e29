"""Streaming token2wav: speech units -> 24 kHz audio in chunks, decoded ahead, with seams hidden.

The release decodes a whole reply at once: [291 voice-prompt units, *units] through flow matching
(classifier-free guidance, batch 2; a 10-point midpoint ODE, 18 passes of the 12-layer DiT over
every frame) and BigVGAN, then cuts at the prompt latent's 1167 frames: M units -> M x 960 - 720
samples ending with the last unit. Calling that per 160 ms step re-decodes the prompt every time
and leaves a seam at every boundary (fresh noise, no right context). Here, per turn:

- chunks grow: the first is small (the units of the SHIFT step: first audio soon), later ones
  double up to `max_chunk`, covering units the LLM has decoded but the speaker has not asked for
  yet (`ahead`), so the fixed prompt cost is paid once per chunk, not once per step;
- each chunk is decoded with `left_context` units before it and up to `lookahead` after it
  (right context), and its audio is cross-faded over `crossfade_ms` with the previous chunk's
  audio of the same samples;
- the noise is fixed per turn and indexed by frame, so overlapping decodes of the same frames
  start from the same noise and agree closely (the bench measures how closely);
- guidance runs as one batch of 2; the time/speaker conditioning of every ODE point is computed
  once (it does not depend on the sequence); `steps` trades quality for speed; bf16 on GPU.

What the architecture does not allow: caching the prompt's activations. The DiT attends both
ways, so the prompt frames' states depend on the units after them; `prompt_units` can shorten the
prompt instead (a voice-similarity trade, measured in the bench, off by default).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from duplex.backbones.covo.t2w_model import Token2Wav

LAG_FRAMES = 3  # the release's prompt latent is 4 x 291 + 3 frames: 3 frames of the first unit are never output
NOISE_BLOCK = 256  # frames per noise block: block b of turn k is seeded (seed, k, b), whatever the chunking


@dataclass(frozen=True, slots=True)
class StreamSettings:
    first_chunk: int = 3  # units in a turn's first chunk (the SHIFT step carries 3)
    max_chunk: int = 16  # later chunks double up to this
    left_context: int = 8  # units before a chunk decoded again with it (>= 1: the release's 30 ms lag)
    lookahead: int = 2  # units after a chunk decoded with it, when known
    crossfade_ms: float = 20.0
    steps: int = 10  # ODE time points (the release: 10)
    cfg_alpha: float = 1.0
    prompt_units: int = 0  # 0 = the whole voice prompt


@dataclass(slots=True)
class VoicePrompt:
    tokens: torch.Tensor  # (P,) unit ids
    latent: torch.Tensor  # (4P + 3, z)
    speaker: torch.Tensor  # (1, spkr_dim)

    @classmethod
    def load(cls, folder: Path) -> VoicePrompt:
        """The release's prompt folder: prompt_token.npy, prompt_latent.npy, speaker_embed.npy."""
        arrays = [np.load(folder / n) for n in ("prompt_token.npy", "prompt_latent.npy", "speaker_embed.npy")]
        return cls(torch.as_tensor(arrays[0]).long().reshape(-1), torch.as_tensor(arrays[1]).float()[0]
                   if arrays[1].ndim == 3 else torch.as_tensor(arrays[1]).float(),
                   torch.as_tensor(arrays[2]).float().reshape(1, -1))

    @classmethod
    def random(cls, model: Token2Wav, units: int = 291, seed: int = 0) -> VoicePrompt:
        """A stand-in of the release's shape (291 units, 1167 frames) for random-weight measurements."""
        g = torch.Generator().manual_seed(seed)
        t2l = model.token2latent
        return cls(torch.randint(0, t2l.token_embedding.num_embeddings, (units,), generator=g),
                   torch.randn(units * t2l.upsample + LAG_FRAMES, t2l.z_dim, generator=g),
                   torch.randn(1, t2l.spkr_dim, generator=g))

    def last(self, units: int, frames_per_unit: int) -> VoicePrompt:
        if units <= 0 or units >= self.tokens.numel():
            return self
        return VoicePrompt(self.tokens[-units:], self.latent[-(units * frames_per_unit + LAG_FRAMES):], self.speaker)


class Synth:
    """One window of units -> its audio (M x unit - lag samples), with the turn's fixed noise."""

    def __init__(self, model: Token2Wav, prompt: VoicePrompt, settings: StreamSettings, *, device: torch.device,
                 dtype: torch.dtype, seed: int = 0, stats: np.ndarray | None = None) -> None:
        self.model = model.to(device, dtype).eval().requires_grad_(False)
        mean_var = torch.as_tensor(stats).float().reshape(2, -1) if stats is not None else None
        self.mean, self.std = ((mean_var[0].to(device), mean_var[1].sqrt().to(device)) if mean_var is not None
                               else (None, None))  # the release's global_mean_var.npy: latent statistics
        self.t2l = model.token2latent
        self.settings = settings
        self.device, self.dtype = device, dtype
        self.up = model.frames_per_unit
        self.prompt = prompt.last(settings.prompt_units, self.up)
        self.tokens = self.prompt.tokens.to(device)
        self.prompt_latent = self.prompt.latent.to(device, torch.float32)
        self.seed = seed
        self.turn = 0
        self._noise: dict[int, torch.Tensor] = {}
        g = torch.Generator().manual_seed(seed)
        self.prompt_noise = torch.randn(self.tokens.numel() * self.up, self.t2l.z_dim, generator=g).to(device)
        times = torch.linspace(0, 1, settings.steps)
        self.grid = [(float(a), float(b)) for a, b in zip(times[:-1], times[1:], strict=True)]
        points = sorted({t for a, b in self.grid for t in (a, (a + b) / 2)})
        with torch.no_grad():
            spk = self.prompt.speaker.to(device, dtype)
            conds = self.t2l.conditioning(torch.tensor(points, device=device, dtype=dtype), spk)
        self.cond = {t: (f.expand(2, -1), [m.expand(2, -1) for m in mods]) for t, (f, mods) in zip(points, conds,
                                                                                                   strict=True)}
        self._rope: tuple[int, torch.Tensor, torch.Tensor] = (0, torch.empty(0), torch.empty(0))

    def new_turn(self) -> None:
        self.turn += 1
        self._noise = {}  # rebound, not cleared: a worker may still read the old turn's

    def noise(self, start: int, stop: int) -> torch.Tensor:
        """The turn's noise for frames [start, stop): fixed, whatever window asks for it."""
        cache, turn, z = self._noise, self.turn, self.t2l.z_dim  # locals: new_turn() may rebind meanwhile
        span = range(start // NOISE_BLOCK, (stop - 1) // NOISE_BLOCK + 1)
        for b in span:
            if b not in cache:
                g = torch.Generator().manual_seed(hash((self.seed, turn, b)) & 0x7FFF_FFFF)
                cache[b] = torch.randn(NOISE_BLOCK, z, generator=g).to(self.device)
        first = span[0] * NOISE_BLOCK
        return torch.cat([cache[b] for b in span])[start - first: stop - first]

    def __call__(self, units: Sequence[int], first_unit: int) -> np.ndarray:
        """Audio of `units` (the turn's units from index `first_unit`): len x unit - lag samples."""
        return self.audio(units, first_unit)[0].float().cpu().numpy()

    @torch.no_grad()
    def audio(self, units: Sequence[int], first_unit: int) -> torch.Tensor:
        """(1, samples) on the device, as the model's dtype."""
        t2l, s = self.t2l, self.settings
        ids = torch.cat([self.tokens, torch.as_tensor(list(units), device=self.device)])[None]
        feats = t2l.unit_features(ids).to(self.dtype)  # (1, T, D)
        frames, p = feats.shape[1], self.prompt_latent.shape[0]
        cond_latent = torch.zeros(1, frames, t2l.z_dim, device=self.device)
        cond_latent[0, :p] = self.prompt_latent
        start = first_unit * self.up
        y = torch.cat([self.prompt_noise, self.noise(start, start + len(units) * self.up)])[None]
        inputs = torch.cat([torch.cat([torch.zeros_like(feats), feats]), cond_latent.expand(2, -1, -1).to(self.dtype)],
                           dim=-1)  # guidance as one batch of 2: [no units, units]
        cos, sin = self._rope_tables(frames)

        def field(t: float, x: torch.Tensor) -> torch.Tensor:
            out = t2l.field(torch.cat([inputs, x.to(self.dtype).expand(2, -1, -1)], dim=-1), self.cond[t], cos, sin)
            uncond, cond = out.float().chunk(2)
            return cond + (cond - uncond) * s.cfg_alpha

        for a, b in self.grid:  # explicit midpoint, as torchdiffeq's fixed grid does it
            h = b - a
            y = y + h * field((a + b) / 2, y + h / 2 * field(a, y))
        latents = y[:, p:]  # the release keeps frames from the prompt latent's end: 3 of the first unit are lost
        if self.mean is not None:
            latents = self.mean + latents * self.std
        return self.model.wavegan(latents.transpose(1, 2).to(self.dtype))

    def _rope_tables(self, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._rope[0] < frames:
            cos, sin = self.t2l.rope_tables(max(frames, 2 * self._rope[0]), self.device, self.dtype)
            self._rope = (cos.shape[0], cos, sin)
        return self._rope[1][:frames], self._rope[2][:frames]


Ahead = Callable[[], tuple[list[int], bool]]  # -> (units decoded past those asked for, the reply has ended)


class StreamingToken2Wav:
    """The Vocoder protocol over `Synth`: audio for exactly the units asked for, from chunks decoded ahead.

    With `background`, the next chunk is decoded on a worker thread as soon as its units (and its
    lookahead) are known, while the speaker plays the audio already made: a step then waits only
    when the worker has fallen behind. Without it, a chunk is decoded when a step first needs it.
    """

    def __init__(self, synth: Synth, *, ahead: Ahead | None = None, background: bool = False) -> None:
        self.synth = synth
        self.settings = synth.settings
        if self.settings.left_context < 1:
            raise ValueError("left_context must be >= 1: without it each chunk would lose 30 ms")
        self.ahead: Ahead = ahead or (lambda: ([], False))
        self.sample_rate = synth.model.sample_rate
        self.unit = synth.model.unit_samples
        self.lag = LAG_FRAMES * synth.model.wavegan.hop
        self.fade = int(self.sample_rate * self.settings.crossfade_ms / 1000)
        self.level = 0.0
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="token2wav") if background else None
        self._pending: Future[None] | None = None
        self._gen = 0  # turn generation: a chunk decoded for an earlier turn is dropped
        self.chunks: list[tuple[int, int]] = []  # (first unit, units) of each decode this turn (for the bench)
        self._reset_turn()

    def _reset_turn(self) -> None:
        self.units: list[int] = []  # the turn's units known so far (asked for, then ahead)
        self.asked = 0  # units asked for
        self.done = 0  # units whose audio is final
        self.audio = np.zeros(0, np.float32)  # final audio not yet returned
        self.out = 0  # turn samples returned so far
        self.tail = np.zeros(0, np.float32)  # audio past `done` from the last chunk, to cross-fade
        self.chunks = []
        self.background_chunks = 0
        self._ended = False  # the reply in flight has no units left beyond those known

    def reset(self) -> None:
        """A barge-in or the end of a turn: the next units start a new turn (new noise, no context).

        Never waits: a chunk still being decoded for the old turn is dropped when it finishes.
        """
        with self._lock:
            self._new_turn()
            self.level = 0.0

    def _new_turn(self) -> None:
        self._gen += 1
        self._pending = None
        self._reset_turn()
        self.synth.new_turn()

    def decode(self, units: Sequence[int]) -> np.ndarray:
        with self._lock:
            if self._ended and self.done >= self.asked >= len(self.units):  # the last reply was all spoken
                self._new_turn()
            self.units[self.asked: self.asked + len(units)] = list(units)
            del self.units[self.asked + len(units):]  # units peeked earlier are replaced by what is asked now
            self.asked += len(units)
            more, ended = self.ahead()
            self.units.extend(more)
            self._ended = ended
            pending = self._pending
        if pending is not None and (self.done < self.asked or pending.done()):
            pending.result()
            self._pending = None
        while self.done < self.asked:
            self._run(self._plan(ended, need=self.asked))
        with self._lock:
            end = self.asked * self.unit - self.lag  # turn samples up to the end of the last asked unit
            take = max(0, end - self.out)
            out, self.audio = self.audio[:take], self.audio[take:]
            self.out += out.size
            self.level = float(np.sqrt(np.mean(out**2))) if out.size else 0.0
            if self._worker is not None and self._pending is None:
                plan = self._plan(ended, need=0)
                if plan is not None:
                    self.background_chunks += 1
                    self._pending = self._worker.submit(self._run, plan)
        return out

    def _plan(self, ended: bool, need: int) -> tuple[int, int, int, int, list[int]] | None:
        """The next chunk: (generation, first unit, stop, window start, window units); at least up to `need`."""
        s, n, st = self.done, len(self.units), self.settings
        target = min(st.max_chunk, st.first_chunk << len(self.chunks))  # 3, 6, 12, 16, 16, ...
        stop = min(n, s + max(target, need - s))
        if not ended and n - stop < st.lookahead:
            stop = max(need, n - st.lookahead)  # a shorter chunk rather than one without right context
        if stop <= s:
            return None
        left = max(0, s - st.left_context)
        return self._gen, s, stop, left, self.units[left: min(n, stop + st.lookahead)]

    def _run(self, plan: tuple[int, int, int, int, list[int]] | None) -> None:
        assert plan is not None
        gen, s, stop, left, window = plan
        wav = self.synth(window, left)  # covers turn samples [left*unit, (left+len)*unit - lag)
        base = left * self.unit
        begin, finish = max(0, s * self.unit - self.lag), stop * self.unit - self.lag
        new = wav[begin - base: finish - base].astype(np.float32)
        with self._lock:
            if gen != self._gen:
                return
            if self.tail.size:
                k = min(self.tail.size, new.size)
                w = np.sin(np.linspace(0, np.pi / 2, k, dtype=np.float32)) ** 2
                new[:k] = self.tail[:k] * (1 - w) + new[:k] * w
            self.tail = wav[finish - base: finish - base + self.fade].astype(np.float32)
            self.audio = np.concatenate([self.audio, new])
            self.done = stop
            self.chunks.append((s, stop - s))
