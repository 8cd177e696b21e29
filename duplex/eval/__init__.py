"""Held-out conversation evaluation: `python -m duplex.eval` (docs/metrics.md)."""
