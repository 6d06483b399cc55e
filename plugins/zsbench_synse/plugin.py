"""Registers the verb/noun text source of SynSE (no torch at import time)."""
from __future__ import annotations

import zsbench
from zsbench.specs import TextSourceSpec

from .texts import SynsePosConfig


@zsbench.hookimpl
def zsbench_text_sources() -> list[TextSourceSpec]:
    return [TextSourceSpec(
        name="synse_pos", impl="zsbench_synse.texts:pos_texts", config=SynsePosConfig,
        text_kinds=["verb", "noun"], default_for=["verb", "noun"],
        description="verb and noun phrases of the class labels (SynSE/JPoSE part-of-speech "
                    "split: deterministic rules of zsbench_synse.pos, or given as data)")]
