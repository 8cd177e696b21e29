"""Sessions started together in a fresh process: model loading must not race on lazy imports."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

from duplex.backbones import model_imports
from tests.speech import silence, write_wav

BACKBONES = Path(__file__).resolve().parents[1] / "duplex" / "backbones"


def test_four_sessions_start_together_in_a_fresh_process(tmp_path: Path) -> None:
    user = write_wav(tmp_path / "q.wav", silence(0.5))
    script = textwrap.dedent(f"""
        import asyncio
        from duplex.config import Config
        from duplex.session import DuplexSession

        async def one():
            async with DuplexSession(config=Config(), input={str(user)!r}) as session:
                return (await session.wait()).steps

        async def main():
            return await asyncio.gather(*(one() for _ in range(4)))

        print("steps", *asyncio.run(main()))
    """)
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", script], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    steps = proc.stdout.split()
    assert steps[0] == "steps" and len(steps) == 5 and all(int(s) >= 3 for s in steps[1:]), proc.stdout


def test_every_lazy_model_import_is_resolved_up_front() -> None:
    """Each `from transformers/safetensors/torch... import NAME` in a backbone is in model_imports.NAMES."""
    missing = []
    for path in BACKBONES.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in (
                    "transformers", "safetensors"):
                for alias in node.names:
                    if alias.name not in model_imports.NAMES.get(node.module, ()):
                        missing.append(f"{path.name}: from {node.module} import {alias.name}")
    assert not missing, missing
