"""The tiny-fd network: streaming encoder + a small Qwen2 decoder fed through `inputs_embeds`.

The sequence interleaves, per 160 ms step, one user embedding and the model's four tokens (1:4),
after a one-token fixed prefix (BOS):  BOS, U0, t0.1..t0.4, U1, t1.1..t1.4, ...
The hidden state at U_k predicts the step's first token (the floor decision); the one at a SHIFT
predicts which reply to start. Everything else is forced by the grammar (vocab.py), so it is fed
but not scored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from duplex.backbones.tiny_fd.encoder import StreamingEncoder
from duplex.backbones.tiny_fd.features import LogMel
from duplex.backbones.tiny_fd.vocab import UNIT0

SLOTS = 5  # positions per step: the user embedding + four tokens


@dataclass(frozen=True)
class NetConfig:
    n_units: int
    hidden: int = 160
    layers: int = 3
    heads: int = 4
    kv_heads: int = 2
    ffn: int = 432
    enc_width: int = 96
    max_positions: int = 512

    @property
    def vocab(self) -> int:
        return UNIT0 + self.n_units

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class TinyFd(nn.Module):
    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        from transformers import Qwen2Config, Qwen2ForCausalLM

        self.cfg = cfg
        self.mel = LogMel()
        self.encoder = StreamingEncoder(cfg.hidden, cfg.enc_width)
        qcfg = Qwen2Config(vocab_size=cfg.vocab, hidden_size=cfg.hidden, intermediate_size=cfg.ffn,
                           num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads,
                           num_key_value_heads=cfg.kv_heads, max_position_embeddings=cfg.max_positions,
                           tie_word_embeddings=True, rope_theta=10_000.0, use_cache=True,
                           bos_token_id=0, eos_token_id=4, pad_token_id=0)
        qcfg._attn_implementation = "sdpa"
        self.llm = Qwen2ForCausalLM(qcfg)

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        return self.llm.get_input_embeddings()(ids)

    def features(self, mic: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """(B, n) mic and reference audio -> (B, 2 * mels, n / 160) frames."""
        return torch.cat([self.mel.full(mic), self.mel.full(ref)], dim=1)

    def sequence(self, user: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """(B, S, H) user embeddings and (B, S, 4) tokens -> (B, 1 + 5 S, H) input embeddings."""
        b, s, h = user.shape
        steps = torch.cat([user[:, :, None, :], self.embed_tokens(tokens)], dim=2).reshape(b, s * SLOTS, h)
        bos = self.embed_tokens(torch.zeros(b, 1, dtype=torch.long, device=user.device))
        return torch.cat([bos, steps], dim=1)

    def forward(self, mic: torch.Tensor, ref: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Training: hidden states (B, 1 + 5 S, H) of the whole interleaved sequence."""
        user, _ = self.encoder(self.features(mic, ref))
        embeds = self.sequence(user, tokens)
        out = self.llm.model(inputs_embeds=embeds, use_cache=False)
        return out.last_hidden_state

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.llm.lm_head(hidden)
