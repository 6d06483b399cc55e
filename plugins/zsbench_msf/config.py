"""MSF options (no torch here). Defaults: official code EHZ9NIWI7/MSF-GZSSAR (train.py,
gating_train.py, run60.sh / run120.sh); docs/methods/msf.md names the source of each."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from zsbench.specs import MethodNeeds
from zsbench_cada_vae.config import VAEMethodConfig

#: the paper's three semantics -> the harness text kinds that carry them
#: (zsbench_text sources msf_label / msf_action / msf_motion; embedded benchmark kinds)
DEFAULT_KIND_MAP = {"lb": "name", "ad": "description", "md": "motion"}
PARTS = ("lb", "ad", "md")


class MSFConfig(VAEMethodConfig):
    """Multi-Semantic Fusion (Li, Jia, Zhang, Ma, Wang, ICIG 2023)."""

    text_mode: str = Field(
        "lb_ad_md", description="semantics fused, in order, joined by '_' (official --tm; "
        "Tables 6-7: lb, ad, md, ad_md, lb_ad_md): lb = class label, ad = action "
        "description, md = motion description")
    kind_map: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_KIND_MAP),
        description="harness text kind read for each semantic (lb/ad/md)")
    normalize_after_concat: bool = Field(
        True, description="true: concatenate, then one L2 normalisation (train.py); false: "
        "L2-normalise each part, then concatenate")
    cycle_source: Literal["code", "paper"] = Field(
        "code", description="cycle-length preset: code = 1700 NTU-60 (run60.sh), 1900 NTU-120 "
        "(run120.sh); paper = 1900 everywhere (§5.2)")

    @field_validator("text_mode")
    @classmethod
    def _check_mode(cls, v: str) -> str:
        parts = v.split("_")
        if not parts or any(p not in PARTS for p in parts) or len(set(parts)) != len(parts):
            raise ValueError(f"text_mode {v!r}: use distinct parts of {PARTS} joined by '_' "
                             "(e.g. lb, ad_md, lb_ad_md)")
        return v

    @field_validator("kind_map")
    @classmethod
    def _check_map(cls, v: dict[str, str]) -> dict[str, str]:
        missing = [p for p in PARTS if p not in v]
        if missing:
            raise ValueError(f"kind_map must name a text kind for {missing}")
        return v

    @property
    def parts(self) -> list[str]:
        return self.text_mode.split("_")

    def kinds(self) -> list[str]:
        return [self.kind_map[p] for p in self.parts]

    def needs(self) -> MethodNeeds:
        return MethodNeeds(text_kinds=self.kinds())

    def reported_variant(self) -> str:
        return f"text_{self.text_mode}"

    def cycle_length_for(self, family: str, n_unseen: int) -> int:
        if self.cycle_length:
            return self.cycle_length
        if self.cycle_source == "code" and family in ("ntu60", "synthetic"):
            return 1700
        return 1900

    def text_kl_variant(self) -> Literal["cada_vae", "synse"]:
        return "synse"

    def official_gate(self, family: str, n_unseen: int) -> tuple[float, float]:
        """run60.sh / run120.sh: th=50, t=2."""
        return 0.5, 2.0
