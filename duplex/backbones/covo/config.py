"""The `covo:` config section: where the checkpoint lives, which mode, and how fast to run it.

Kept free of torch so that `--print-config` and config errors stay instant. Token strings are
configuration (DESIGN: "token strings of a given checkpoint are configuration, not constants"),
and so are the prompts; the defaults are those of the released Covo-Audio-Chat.
"""

from __future__ import annotations

from dataclasses import dataclass

from duplex.backbones.registry import BackboneEntry, register
from duplex.fields import opt

# The system prompt the released Covo-Audio-Chat was trained with (its public inference code): it
# asks for replies in text and audio, alternating 5 text and 15 audio tokens, voice default_female.
COVO_SYSTEM_PROMPT = (
    '你是"小腾"，英文名是"Covo"，由腾讯开发的AI助手。\n'
    "1、请使用简洁、口语化的语言和用户聊天，你的态度积极、耐心，像一位值得信赖的朋友。\n"
    "2、不要使用列表或编号，避免输出网址、表情符号和复杂的公式。\n"
    "3、不评价竞争对手，不发表主观政治观点，针对色情类、政治类、恐怖类、歧视类、暴力类的用户问题，"
    "你要妥善应对潜在的安全风险，并给出幽默，情绪安抚以及安全的劝导。\n"
    "请用文本和音频进行对话，交替生成5个文本token和15个音频token，音频部分使用发音人：default_female"
)

NATIVE_PREFIX = "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>assistant\n"

_WHERE = "relative to the config file"


@dataclass(frozen=True)
class CovoConfig:
    checkpoint: str = opt("checkpoints/covo-audio-chat",
                          f"checkpoint folder: config.json, *.safetensors, tokenizer.json ({_WHERE})")
    mode: str = opt("turn", "turn = a floor policy (policy.floor) around the chat model; "
                    "native = the model's own control tokens", choices=("turn", "native"))
    device: str = opt("auto", "torch device: auto (cuda when available), cpu, cuda, cuda:1, ...")
    dtype: str = opt("auto", "weights and activations: auto = bfloat16 on GPU, float32 on CPU",
                     choices=("auto", "bfloat16", "float16", "float32"))
    cache: str = opt("static", "KV cache: static (preallocated) or dynamic (transformers' forward, the baseline)",
                     choices=("static", "dynamic"))
    optimise: str = opt("auto", "static cache: auto = CUDA graphs on GPU, none on CPU; compile = torch.compile",
                        choices=("auto", "none", "graphs", "compile"))
    context_tokens: int = opt(4096, "KV cache capacity in positions (native mode uses 5 per step)", lo=64, hi=131072)
    refill_keep_tokens: int = opt(2048, "native: recent positions kept when the full context is refilled",
                                  lo=16, hi=131072)
    encoder_window_steps: int = opt(16, "native: audio re-encoded each step, in 160 ms steps (16 = 2.56 s)",
                                    lo=2, hi=187)
    sampling: str = opt("release", "turn: release (the reference example: 1st reply greedy, then T 0.5, top-p 0.9, "
                        "top-k 50, penalties 1.05), greedy (every reply as the 1st), custom (the keys below)",
                        choices=("release", "greedy", "custom"))
    temperature: float = opt(0.0, "custom sampling (and native mode): temperature; 0 = greedy", lo=0.0, hi=5.0)
    top_k: int = opt(0, "custom sampling: keep the k most likely tokens (0 = off)", lo=0, hi=1_000_000)
    top_p: float = opt(1.0, "custom sampling: nucleus, smallest set with this much probability (1 = off)",
                       lo=0.01, hi=1.0)
    sequence_penalty: float = opt(1.0, "custom sampling: HF repetition_penalty over the turn's prompt and reply",
                                  lo=1.0, hi=3.0)
    repetition_penalty: float = opt(1.05, "custom sampling: penalty on tokens among the last repetition_window "
                                    "(1 = off)", lo=1.0, hi=3.0)
    repetition_window: int = opt(8, "custom sampling: how many recent tokens the repetition penalty looks at",
                                 lo=1, hi=256)
    cpu_threads: int = opt(0, "CPU: torch intra-op threads (0 = torch's default; 1 suits small models)", lo=0, hi=256)
    seed: int = opt(0, "random seed for sampling", lo=0, hi=2**31 - 1)
    system_prompt: str = opt(COVO_SYSTEM_PROMPT, "system prompt (turn mode; {system} in native_prefix)")
    native_prefix: str = opt(NATIVE_PREFIX, "native: the text that opens the context, before the first user frame")
    think_token: str = opt("<|THINK|>", "native: tokenizer string of THINK")
    shift_token: str = opt("<|SHIFT|>", "native: tokenizer string of SHIFT")
    break_token: str = opt("<|BREAK|>", "native: tokenizer string of BREAK")
    eot_token: str = opt("<|EOT|>", "native: tokenizer string of EOT (end of the model's turn)")
    eos_token: str = opt("<|im_end|>", "turn: the token that ends a reply")
    max_reply_tokens: int = opt(2048, "turn: longest reply, in tokens (text and speech; the release's 2048)",
                                lo=8, hi=32768)
    burst_tokens: int = opt(4, "turn: tokens decoded per device call (one host sync each)", lo=1, hi=32)
    interleave: str = opt("", "turn: force the reply's text/speech pattern, e.g. '5,15' ('' = the model's own)")
    vocoder_repo: str = opt("", f"Covo-Audio clone holding the token2wav package ('' = no vocoder) ({_WHERE})")
    vocoder_checkpoint: str = opt("", "token2wav weights: model.pt, with global_mean_var.npy beside it")
    vocoder_config: str = opt("", "token2wav config ('' = <vocoder_repo>/token2wav/config.json)")
    vocoder_prompt_dir: str = opt("", "voice prompt folder ('' = <vocoder_repo>/token2wav/prompt)")
    vocoder_device: str = opt("", "device for token2wav ('' = the model's)")
    vocoder_engine: str = opt("stream", "stream = our streaming token2wav (chunks decoded ahead, cross-faded; "
                              "needs config.json, model.pt, the prompt folder); release = the release's decode()",
                              choices=("stream", "release"))
    vocoder_context_units: int = opt(8, "speech units of left context decoded again with each chunk", lo=1, hi=500)
    vocoder_first_chunk: int = opt(3, "stream: units in a reply's first chunk (first audio soonest)", lo=1, hi=64)
    vocoder_max_chunk: int = opt(16, "stream: later chunks double up to this many units", lo=1, hi=256)
    vocoder_lookahead: int = opt(2, "stream: units after a chunk decoded with it (right context)", lo=0, hi=32)
    vocoder_crossfade_ms: float = opt(20.0, "stream: cross-fade at chunk boundaries", lo=0.0, hi=200.0)
    vocoder_ode_points: int = opt(10, "stream: flow-matching ODE time points (the release: 10; fewer is faster)",
                                  lo=2, hi=64)
    vocoder_prompt_units: int = opt(0, "stream: voice-prompt units kept, the last ones (0 = all 291)", lo=0, hi=4096)


# Turn mode wraps the chat model in the VAD turn policy, so the loader takes that section too.
register(BackboneEntry("covo", "Covo-Audio", "duplex.backbones.covo:load_covo", ("covo", "policy", "tiny_fd")))
