"""Full-Duplex-Bench's published v1.0 rows, as stored in its repository (not re-measured here).

Source: github.com/DanielLin94144/Full-Duplex-Bench, `v1_v1.5/README.md` at d7336bd (2026-04-15).
Each row records the commit that introduced its numbers:
- Moshi, dGSLM, Freeze-Omni, Gemini Live 2.0: 4efb765 (2025-06-05, "Update the ASR and results":
  word timestamps from nvidia/parakeet-tdt-0.6b-v2);
- PersonaPlex: 1d40caa (2026-02-22, "Codebase Update for New Models and Bug Fixes");
- GPT-Realtime: fb5a5ed (2026-02-22, "Rename gpt4o to gpt-realtime & add result").
The README marks Gemini Live 2.0 as deprecated. Its table has no v1.5 stop/response latencies
(v1.5's results are published only as figures and in the paper, arXiv 2507.23159), so those cells
are "not in repo", never invented. "Synthetic TOR" is the pause-handling column that matches this
tool's synthetic pauses; the Candor columns use real conversations.
"""

from __future__ import annotations

SOURCE = "Full-Duplex-Bench v1_v1.5/README.md @ d7336bd"
NOT_IN_REPO = "not in repo"

# metric -> value; keys match the fdb_* names of duplex.scenario.fdb (without the prefix).
ROWS: dict[str, dict[str, float | str]] = {
    "Moshi": {"pause_tor": 0.985, "pause_tor_candor": 0.980, "backchannel_tor": 1.000, "backchannel_freq": 0.001,
              "backchannel_jsd": 0.957, "turn_tor": 0.941, "turn_latency_s": 0.265, "interrupt_tor": 1.000,
              "interrupt_gpt4o": 0.765, "interrupt_latency_s": 0.257, "code": "4efb765 (2025-06-05)"},
    "Freeze-Omni": {"pause_tor": 0.642, "pause_tor_candor": 0.481, "backchannel_tor": 0.636,
                    "backchannel_freq": 0.001, "backchannel_jsd": 0.997, "turn_tor": 0.336, "turn_latency_s": 0.953,
                    "interrupt_tor": 0.867, "interrupt_gpt4o": 3.615, "interrupt_latency_s": 1.409,
                    "code": "4efb765 (2025-06-05)"},
    "dGSLM": {"pause_tor": 0.934, "pause_tor_candor": 0.935, "backchannel_tor": 0.691, "backchannel_freq": 0.015,
              "backchannel_jsd": 0.934, "turn_tor": 0.975, "turn_latency_s": 0.352, "interrupt_tor": 0.917,
              "interrupt_gpt4o": 0.201, "interrupt_latency_s": 2.531, "code": "4efb765 (2025-06-05)"},
    "PersonaPlex": {"pause_tor": 0.584, "pause_tor_candor": 0.662, "backchannel_tor": 0.327,
                    "backchannel_freq": 0.025, "backchannel_jsd": 0.649, "turn_tor": 0.992, "turn_latency_s": 0.070,
                    "interrupt_tor": 1.000, "interrupt_gpt4o": 4.210, "interrupt_latency_s": 0.400,
                    "code": "1d40caa (2026-02-22)"},
    "Gemini Live 2.0": {"pause_tor": 0.255, "pause_tor_candor": 0.310, "backchannel_tor": 0.091,
                        "backchannel_freq": 0.012, "backchannel_jsd": 0.896, "turn_tor": 0.655,
                        "turn_latency_s": 1.301, "interrupt_tor": 0.891, "interrupt_gpt4o": 3.376,
                        "interrupt_latency_s": 1.183, "code": "4efb765 (2025-06-05), deprecated"},
    "GPT-Realtime": {"pause_tor": 0.010, "pause_tor_candor": 0.120, "backchannel_tor": 0.000,
                     "backchannel_freq": 0.007, "backchannel_jsd": 0.980, "turn_tor": 1.000, "turn_latency_s": 1.470,
                     "interrupt_tor": 0.970, "interrupt_gpt4o": 3.850, "interrupt_latency_s": 1.500,
                     "code": "fb5a5ed (2026-02-22)"},
}


def published(system: str, key: str) -> float | str:
    return ROWS[system].get(key, NOT_IN_REPO)
