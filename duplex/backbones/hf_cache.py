"""transformers renamed the forward's KV-cache argument (`past_key_values` -> `cache`) within 5.x.

Both names are supported, chosen once per model class from its signature, so the current releases
print no deprecation warning and the earlier 5.x releases still get their cache (an unknown keyword
would be swallowed by `**kwargs` and every step would run without context).
"""

from __future__ import annotations

import inspect
from typing import Any


def cache_keyword(llm: Any) -> str:
    """The forward's KV-cache argument: `cache` in current transformers, `past_key_values` before the rename."""
    return "cache" if "cache" in inspect.signature(type(llm).forward).parameters else "past_key_values"


def returned_cache(out: Any) -> Any:
    """The updated cache of a forward's output, under either name."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values
