"""Registration of the embedded ``synthetic`` dataset (no heavy imports here)."""
from __future__ import annotations

import zsbench
from zsbench.specs import DatasetSpec

from .config import SyntheticConfig


@zsbench.hookimpl
def zsbench_datasets() -> list[DatasetSpec]:
    return [DatasetSpec(
        name="synthetic", impl="zsbench_synthetic.dataset:load_synthetic",
        config=SyntheticConfig, real=False,
        description="Embedded benchmark: procedurally generated NTU-25-joint skeleton "
                    "sequences (up to two bodies, several subjects, three camera views) "
                    "whose classes are compositions of body-part motion primitives; ships "
                    "name, description, motion, parts, phases and context texts and its "
                    "own folds for every protocol family. Generated in seconds and cached.")]
