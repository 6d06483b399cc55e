"""Configuration of the embedded synthetic benchmark."""
from __future__ import annotations

from pydantic import Field, model_validator

from zsbench.specs import PluginConfig


class SyntheticConfig(PluginConfig):
    """Options of the procedurally generated ``synthetic`` dataset.

    Every field takes part in the cache fingerprint, so changing any of them produces a
    new dataset in a new cache folder.
    """

    seed: int = Field(default=0, ge=0, description="seed of every random choice")
    num_classes: int = Field(default=40, ge=10, le=300,
                             description="number of action classes (compositions)")
    sequences: int = Field(default=1500, ge=60, description="number of sequences in total")
    frames: int = Field(default=24, ge=16, le=300, description="frames per sequence (T); 24 by "
                        "default so an ST-GCN trains in about a minute on 2 CPU cores (NTU arrays use 50)")
    num_subjects: int = Field(default=10, ge=2, le=100,
                              description="performers; each has its own bone lengths")
    num_setups: int = Field(default=4, ge=2, le=32,
                            description="recording set-ups (camera heights/pitch)")
    camera_spread_deg: float = Field(
        default=45.0, ge=0.0, le=90.0,
        description="yaw of cameras 1/2/3 is -spread, 0, +spread degrees (NTU: 45)")
    noise_std: float = Field(default=0.01, ge=0.0, le=0.2,
                             description="std of the joint noise in metres")
    speed_variation: float = Field(default=0.25, ge=0.0, le=0.8,
                                   description="relative tempo variation per sequence")
    length_variation: float = Field(
        default=0.3, ge=0.0, le=0.8,
        description="sequences last between (1 - length_variation) * frames and frames; "
                    "shorter ones are zero-padded at the end")
    two_person_fraction: float = Field(default=0.2, ge=0.0, le=0.5,
                                       description="fraction of two-person classes")

    @model_validator(mode="after")
    def _enough_sequences(self) -> "SyntheticConfig":
        if self.sequences < 6 * self.num_classes:
            raise ValueError(
                f"sequences ({self.sequences}) must be at least 6 * num_classes "
                f"({6 * self.num_classes}) so that every class has training and test "
                "samples in every partition")
        return self
