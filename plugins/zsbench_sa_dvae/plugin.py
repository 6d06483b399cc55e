"""Registers SA-DVAE (no torch at import time: the implementation is lazy)."""
from __future__ import annotations

import zsbench
from zsbench.specs import MethodSpec

from .config import SADVAEConfig

#: a seconds-long configuration for check-plugin and the conformance tests
SMOKE = {"num_cycles": 3, "latent_size": 16, "irrelevant_latent_size": 4, "batch_size": 16,
         "lr": 1e-3, "n_latents_per_class": 20, "cls_steps": 20, "seen_cls_epochs": 2}


@zsbench.hookimpl
def zsbench_methods() -> list[MethodSpec]:
    return [MethodSpec(
        name="sa_dvae", impl="zsbench_sa_dvae.method:SADVAE", config=SADVAEConfig,
        inputs="features", text_kinds=["name"], default_encoder="shiftgcn", smoke_overrides=SMOKE,
        paper="S.-W. Li, Z.-X. Wei, W.-J. Chen, Y.-H. Yu, C.-Y. Yang, J. Y. Hsu, \"SA-DVAE: "
              "Improving Zero-Shot Skeleton-Based Action Recognition by Disentangled Variational "
              "Autoencoders\", ECCV 2024 (arXiv 2407.13460); code pha123661/SA-DVAE",
        reported="zsbench_sa_dvae:reported.csv",
        description="skeleton VAE with semantic-related and semantic-irrelevant latents, text "
                    "VAE, cross-alignment, adversarial total-correlation discriminator; unseen "
                    "classifier on text latents; seen/unseen gate")]
