"""Registers CADA-VAE (no torch at import time: the implementation is lazy)."""
from __future__ import annotations

import zsbench
from zsbench.specs import MethodSpec

from .config import CadaVAEConfig

#: a seconds-long configuration for check-plugin and the conformance tests
SMOKE = {"num_cycles": 1, "cycle_length": 60, "kl_start": 20, "cross_start": 30,
         "n_latents_per_class": 20, "cls_steps": 20, "seen_cls_epochs": 2, "joint_cls_epochs": 2}


@zsbench.hookimpl
def zsbench_methods() -> list[MethodSpec]:
    return [MethodSpec(
        name="cada_vae", impl="zsbench_cada_vae.method:CadaVAE", config=CadaVAEConfig,
        inputs="features", text_kinds=["name"], default_encoder="shiftgcn", smoke_overrides=SMOKE,
        paper="E. Schönfeld, S. Ebrahimi, S. Sinha, T. Darrell, Z. Akata, \"Generalized Zero- and "
              "Few-Shot Learning via Aligned Variational Autoencoders\", CVPR 2019; skeleton "
              "version from the SynSE repository (skelemoa/synse-zsl, cada_vae/)",
        reported="zsbench_cada_vae:reported.csv",
        description="cross-aligned skeleton/text VAEs (cross-reconstruction, cyclic KL warm-up), "
                    "unseen classifier on latents generated from class texts, seen/unseen gate")]
