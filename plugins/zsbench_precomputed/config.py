from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from zsbench.specs import PluginConfig


class PrecomputedConfig(PluginConfig):
    """Features the user already has, instead of running an encoder.

    * ``layout="aligned"``: one (N, D) ``.npy`` array whose row i is the feature of the
      dataset's sample i; ``trained_on`` must declare the classes the extractor was trained
      on, so the leakage guard can refuse a fold whose unseen classes it saw.
    * ``layout="synse" | "sota" | "flora" | "auto"``: a pre-split feature folder/file of
      SynSE/MSF, SMIE/DVTA or Flora (``zsbench_ntu.features``); its own train / ZSL / GZSL
      sets replace the fold's sample sets, and its unseen classes must equal the fold's.
    """

    path: Path | None = Field(None, description="feature file or folder")
    layout: Literal["aligned", "auto", "synse", "sota", "flora"] = "aligned"
    trained_on: list[int] | None = Field(
        None, description="classes the feature extractor was trained on (required for "
        "'aligned'; for pre-split layouts default: the training labels' classes)")
