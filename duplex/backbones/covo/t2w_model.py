"""The token2wav architecture of the Covo-Audio release, our implementation, built from its config.json.

Two models in a row (shapes as in the release's `token2wav/config.json`, full size in brackets):

    token2latent  flow matching: speech units -> 100 Hz latents (z_dim 64)
                  unit embedding (16384 x 512) -> Linear -> ConvTranspose1d x4 (4 frames per unit)
                  input = [unit features | conditioning latent | x_t] -> Linear -> + depthwise-group
                  conv position embedding -> 12 DiT blocks [1024 wide, 16 heads, RoPE theta 50000,
                  FFN 4096, adaLN modulation from time + speaker embedding] -> adaLN final layer
    wavegan       BigVGAN decoder: latents -> 24 kHz audio, x240 (5,3,2,2,2,2), causal transposed
                  convolutions, AMP residual blocks (kernels 3/7/11, dilations 1/3/5) with
                  anti-aliased SnakeBeta activations, channels 1536 halving per stage

Module and parameter names follow the release's (`token2latent.blocks.0.attn.q_proj`,
`wavegan.ups.0.0`, ...), with weight norm folded away (inference only): `load_release_weights`
reads the release's model.pt into it, folding `weight_g`/`weight_v` pairs, and names every
missing or unexpected tensor. That path is written against the release's module tree and tested
on a state dict in its layout, not on the real file (not at hand here). The same class at random
weights is what the benchmark measures, built from the user's `token2wav/config.json`, or from
`tiny_token2wav_config()` in CI.
Sampling (noise, classifier-free guidance, the ODE) lives in t2w_stream.py.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

TIME_FREQ = 256
ROPE_THETA = 50_000.0


class Attention(nn.Module):
    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(hidden, hidden, bias=False)
        self.k_proj = nn.Linear(hidden, hidden, bias=False)
        self.v_proj = nn.Linear(hidden, hidden, bias=False)
        self.o_proj = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = (p(x).view(b, t, self.heads, -1).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        out = F.scaled_dot_product_attention(q, k, v)  # bidirectional: every frame sees the whole sequence
        return self.o_proj(out.transpose(1, 2).reshape(b, t, c))


class Mlp(nn.Module):
    def __init__(self, hidden: int, ffn: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(hidden, ffn)
        self.fc2 = nn.Linear(ffn, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class Block(nn.Module):
    """DiT block: adaLN-modulated attention and FFN, each gated."""

    def __init__(self, hidden: int, heads: int, ffn: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden, heads)
        self.ffn = Mlp(hidden, ffn)
        self.modulation_layer = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 6 * hidden))

    def forward(self, x: torch.Tensor, mod: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """`mod` = modulation_layer(c), precomputed per ODE point (it depends on time and speaker only)."""
        sa, ca, ga, sf, cf, gf = mod.chunk(6, dim=1)
        x = x + ga[:, None] * self.attn(modulate(self.norm1(x), sa, ca), cos, sin)
        return x + gf[:, None] * self.ffn(modulate(self.norm2(x), sf, cf))


class Token2Latent(nn.Module):
    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        tr = cfg["transformer"]
        d, z, up = tr["hidden_size"], cfg["z_dim"], cfg["upsample_factor"]
        self.hidden, self.z_dim, self.upsample, self.heads = d, z, up, tr["num_heads"]
        self.spkr_dim = cfg.get("spkr_embed_dim", 512)
        self.token_embedding = nn.Embedding(cfg["token_vocab_size"], cfg.get("token_input_dim", d))
        self.token_proj = nn.Sequential(nn.Linear(cfg.get("token_input_dim", d), d),
                                        nn.ConvTranspose1d(d, d, kernel_size=2 * up, stride=up, padding=up // 2))
        self.cond_proj = nn.Linear(d + self.spkr_dim, d)
        self.transformer_input_proj = nn.Linear(d + 2 * z, d)
        self.time_embedder = nn.Sequential(nn.Linear(TIME_FREQ, d), nn.SiLU(), nn.Linear(d, d))
        self.conv_embed = nn.Module()
        self.conv_embed.conv = nn.Conv1d(d, d, 31, padding=15, groups=16)
        self.blocks = nn.ModuleList(Block(d, tr["num_heads"], tr["ffn_hidden_size"]) for _ in range(tr["num_layers"]))
        self.output_layer = nn.Module()
        self.output_layer.norm_final = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.output_layer.linear = nn.Linear(d, z)
        self.output_layer.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))

    def unit_features(self, units: torch.Tensor) -> torch.Tensor:
        """(B, T) unit ids -> (B, upsample*T, hidden): four frames per unit."""
        x = self.token_proj[0](self.token_embedding(units))
        return self.token_proj[1](x.transpose(1, 2)).transpose(1, 2)

    def conditioning(self, times: torch.Tensor, spkr: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        """Per ODE time point: (final-layer modulation, each block's modulation); no sequence involved."""
        out = []
        for t in times:
            emb = self.time_embedder(timestep_embedding(t[None]).to(spkr.dtype))
            c = self.cond_proj(torch.cat([emb, spkr], dim=-1))
            out.append((self.output_layer.adaLN_modulation(c), [blk.modulation_layer(c) for blk in self.blocks]))
        return out

    def field(self, inputs: torch.Tensor, cond: tuple[torch.Tensor, list[torch.Tensor]], cos: torch.Tensor,
              sin: torch.Tensor) -> torch.Tensor:
        """The vector field at one time point: (B, T, hidden + 2 z) -> (B, T, z)."""
        x = self.transformer_input_proj(inputs)
        x = x + F.gelu(self.conv_embed.conv(x.transpose(1, 2)).transpose(1, 2))
        final, mods = cond
        for blk, mod in zip(self.blocks, mods, strict=True):
            x = blk(x, mod, cos, sin)
        shift, scale = final.chunk(2, dim=1)
        return self.output_layer.linear(modulate(self.output_layer.norm_final(x), shift, scale))

    def rope_tables(self, length: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        dim = self.hidden // self.heads
        inv = 1.0 / ROPE_THETA ** (torch.arange(0, dim, 2, dtype=torch.float32, device=device) / dim)
        freqs = torch.outer(torch.arange(length, dtype=torch.float32, device=device), inv)
        emb = torch.cat([freqs, freqs], dim=-1)
        return emb.cos().to(dtype), emb.sin().to(dtype)


class SnakeBeta(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))  # log scale, as configured (snake_logscale)
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.alpha.exp()[None, :, None], self.beta.exp()[None, :, None]
        return x + torch.sin(x * a).pow(2) / (b + 1e-9)


class AntiAliased(nn.Module):
    """x2 upsample (kaiser-windowed sinc), activation, low-pass and x2 downsample: BigVGAN's Activation1d."""

    def __init__(self, channels: int, kernel: int = 12) -> None:
        super().__init__()
        self.act = SnakeBeta(channels)
        self.register_buffer("filter", kaiser_sinc(0.25, 0.3, kernel), persistent=False)
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, k = x.shape[1], self.kernel
        f = self.filter.to(x.dtype).expand(c, 1, k)
        pad = k // 2 - 1
        y = 2 * F.conv_transpose1d(F.pad(x, (pad, pad), mode="replicate"), f, stride=2, groups=c)
        y = y[..., pad * 2 + (k - 2) // 2: -(pad * 2 + (k - 2 + 1) // 2)]
        y = self.act(y)
        return F.conv1d(F.pad(y, (k // 2 - 1, k // 2), mode="replicate"), f, stride=2, groups=c)


class CausalConv(nn.Conv1d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.dilation[0] * (self.kernel_size[0] - 1), 0)))


class AMPBlock(nn.Module):
    def __init__(self, ch: int, kernel: int, dilations: list[int]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(CausalConv(ch, ch, kernel, dilation=d) for d in dilations)
        self.convs2 = nn.ModuleList(CausalConv(ch, ch, kernel) for _ in dilations)
        self.activations = nn.ModuleList(AntiAliased(ch) for _ in range(2 * len(dilations)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2, a1, a2 in zip(self.convs1, self.convs2, self.activations[::2], self.activations[1::2], strict=True):
            x = x + c2(a2(c1(a1(x))))
        return x


class BigVGAN(nn.Module):
    def __init__(self, h: dict[str, Any]) -> None:
        super().__init__()
        ch0 = h["upsample_initial_channel"]
        self.hop = math.prod(h["upsample_rates"])
        self.conv_pre = nn.Conv1d(h["latent_dim"], ch0, 7, padding=3)  # not causal: 3 frames of lookahead
        self.ups = nn.ModuleList(nn.ModuleList([nn.ConvTranspose1d(ch0 >> i, ch0 >> (i + 1), k, u)])
                                 for i, (u, k) in enumerate(zip(h["upsample_rates"], h["upsample_kernel_sizes"],
                                                                strict=True)))
        self.strides = list(h["upsample_rates"])
        self.kernels = len(h["resblock_kernel_sizes"])
        self.resblocks = nn.ModuleList(AMPBlock(ch0 >> (i + 1), k, d) for i in range(len(self.ups))
                                       for k, d in zip(h["resblock_kernel_sizes"], h["resblock_dilation_sizes"],
                                                       strict=True))
        ch = ch0 >> len(self.ups)
        self.activation_post = AntiAliased(ch)
        self.conv_post = CausalConv(ch, 1, 7)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, z, F) latents -> (B, F * hop) audio in [-1, 1]."""
        x = self.conv_pre(latents)
        for i, (up, stride) in enumerate(zip(self.ups, self.strides, strict=True)):
            x = up[0](x)[..., :-stride]  # causal transposed conv: F*u samples
            blocks = self.resblocks[i * self.kernels: (i + 1) * self.kernels]
            x = sum(b(x) for b in blocks) / self.kernels
        return torch.tanh(self.conv_post(self.activation_post(x)))[:, 0]


class Token2Wav(nn.Module):
    """token2latent + wavegan, as the release's Token2WavDecoder holds them."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        model = config["model"]
        self.token2latent = Token2Latent(model["token2latent"])
        self.wavegan = BigVGAN(model["wavegan"])
        self.sample_rate = int(config.get("data", {}).get("audio", {}).get("sample_rate", 24_000))
        self.inference = dict(config.get("inference", {}))

    @property
    def frames_per_unit(self) -> int:
        return self.token2latent.upsample

    @property
    def unit_samples(self) -> int:
        return self.frames_per_unit * self.wavegan.hop


# Persistent buffers of the release with no parameter role here (fixed filters, rebuilt from the config).
_IGNORED_SUFFIXES = (".upsample.filter", ".downsample.lowpass.filter", "global_mean", "global_var")


def load_release_weights(model: Token2Wav, path: Path) -> list[str]:
    """Read the release's token2wav model.pt into `model`; return the names of ignored extra tensors.

    Missing tensors raise one CheckpointError naming them; weight-normed pairs are folded (w = g v / |v|).
    """
    from duplex.errors import CheckpointError, one_line

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise CheckpointError(path, f"cannot read token2wav weights ({one_line(exc)})") from exc
    state = state.get("model", state) if isinstance(state, dict) else state
    if not isinstance(state, dict):
        raise CheckpointError(path, "not a state dict")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    for key in [k for k in state if k.endswith(".weight_g")]:
        stem = key[: -len("_g")]
        g, v = state.pop(key), state.pop(stem + "_v")
        norm = v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))
        state[stem] = g * v / norm
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise CheckpointError(path, f"missing {len(missing)} token2wav tensors: {', '.join(missing[:5])}{more}")
    for name in own:
        if tuple(state[name].shape) != tuple(own[name].shape):
            raise CheckpointError(path, f"tensor {name} has shape {list(state[name].shape)}, "
                                        f"config.json implies {list(own[name].shape)}")
    model.load_state_dict({k: state[k] for k in own})
    return sorted(k for k in set(state) - set(own) if not k.endswith(_IGNORED_SUFFIXES))


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin


def timestep_embedding(t: torch.Tensor, dim: int = TIME_FREQ, max_period: float = 10_000.0) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def kaiser_sinc(cutoff: float, half_width: float, kernel: int) -> torch.Tensor:
    """A normalised low-pass FIR (kaiser-windowed sinc), even length: (1, 1, kernel)."""
    half = kernel // 2
    atten = 2.285 * (half - 1) * math.pi * 4 * half_width + 7.95
    beta = 0.1102 * (atten - 8.7) if atten > 50 else 0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21) \
        if atten >= 21 else 0.0
    window = torch.kaiser_window(kernel, beta=beta, periodic=False)
    time = torch.arange(-half, half) + 0.5
    filt = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
    return (filt / filt.sum()).view(1, 1, kernel)


def release_token2wav_config() -> dict[str, Any]:
    """The shape of the released token2wav (its config.json's numbers), for random-weight benchmarks."""
    cfg = tiny_token2wav_config()
    t2l, gan = cfg["model"]["token2latent"], cfg["model"]["wavegan"]
    t2l.update(token_input_dim=512, z_dim=64, spkr_embed_dim=1024)
    t2l["transformer"].update(num_layers=12, hidden_size=1024, ffn_hidden_size=4096, num_heads=16)
    gan.update(upsample_initial_channel=1536, resblock_kernel_sizes=[3, 7, 11],
               resblock_dilation_sizes=[[1, 3, 5]] * 3, latent_dim=64)
    return cfg


def tiny_token2wav_config() -> dict[str, Any]:
    """The release's token2wav config at toy width (CI and the CPU smoke run): same structure, same rates."""
    return {
        "data": {"audio": {"sample_rate": 24_000, "hop_size": 480}},
        "model": {
            "type": "Token2WavDecoder",
            "token2latent": {"upsample_factor": 4, "token_vocab_size": 16_384, "token_input_dim": 32, "z_dim": 16,
                             "spkr_embed_dim": 32,
                             "transformer": {"num_layers": 2, "hidden_size": 64, "ffn_hidden_size": 128,
                                             "num_heads": 4}},
            "wavegan": {"upsample_rates": [5, 3, 2, 2, 2, 2], "upsample_kernel_sizes": [10, 6, 4, 4, 4, 4],
                        "upsample_initial_channel": 64, "resblock": "1", "resblock_kernel_sizes": [3, 7],
                        "resblock_dilation_sizes": [[1, 3], [1, 3]], "activation": "snakebeta",
                        "snake_logscale": True, "latent_dim": 16, "causal": True},
        },
        "inference": {"s_steps": 10, "cfg_alpha": 1.0},
    }
