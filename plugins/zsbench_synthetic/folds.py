"""The synthetic benchmark's own class splits, one family per protocol style.

Every split keeps unseen classes compositional: each primitive an unseen class uses is
also used by at least one seen class, so a method can only transfer by recombining what
it learnt. Validation classes (for gamma / model selection) are seen classes chosen
under the same rule with respect to the remaining seen classes.
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

import numpy as np

from zsbench.api import ClassSplit, ZsbenchError

from .classes import Composition, primitive_set

DATASET = "synthetic"
_TRIES = 200
_SOURCE = ("zsbench synthetic generator",)
#: protocol families in random-stream order: append new families at the end only
FAMILIES = ("synse", "smie", "star", "purls", "one_shot", "sa_dvae")
#: families of three random folds (pairwise disjoint unseen sets here) -> style name
FOLD_STYLE = {"smie": "SMIE-style", "sa_dvae": "SA-DVAE-style"}


def _pick(sets: Sequence[frozenset[str]], available: Iterable[int], pool: Sequence[int],
          n: int, rng: np.random.Generator) -> list[int] | None:
    """Choose ``n`` classes from ``pool`` to hold out of ``available`` such that every
    primitive of a held-out class stays in use by a class still available; None if the
    random greedy passes all fail."""
    if n <= 0:
        return []
    available = list(available)
    for _ in range(_TRIES):
        counts = Counter(p for c in available for p in sets[c])
        chosen: list[int] = []
        for c in rng.permutation(np.asarray(pool, dtype=np.int64)):
            if all(counts[p] >= 2 for p in sets[int(c)]):
                chosen.append(int(c))
                counts.subtract(sets[int(c)])
                if len(chosen) == n:
                    return sorted(chosen)
    return None


def _split(sets, split_id: str, name: str, n_unseen: int, n_val: int,
           rng: np.random.Generator, exclude: set[int] = frozenset()) -> ClassSplit:
    k = len(sets)
    pool = [c for c in range(k) if c not in exclude]
    unseen = val = None
    joint = _pick(sets, range(k), pool, n_unseen + n_val, rng) if n_val else None
    if joint is not None:  # unseen and validation classes drawn together (strictest)
        order = [int(c) for c in rng.permutation(joint)]
        unseen, val = sorted(order[:n_unseen]), sorted(order[n_unseen:])
    else:
        unseen = _pick(sets, range(k), pool, n_unseen, rng)
    if unseen is None:
        raise ZsbenchError(
            f"synthetic: cannot draw split {split_id!r} ({n_unseen} unseen of {k} classes) "
            "with every unseen primitive used by a seen class; use more classes or another "
            "seed")
    seen = [c for c in range(k) if c not in unseen]
    for size in range(n_val, 0, -1):  # fewer validation classes if the rule forbids more
        if val:
            break
        val = _pick(sets, seen, seen, size, rng)
    notes = "unseen classes are new compositions of primitives that seen classes use"
    if val:
        notes += "; so are the validation classes with respect to the other seen classes"
    else:  # tiny class sets: keep a validation class even though it has a new primitive
        val = [int(rng.choice(seen))]
        notes += "; the validation class uses a primitive no other seen class uses"
    return ClassSplit(
        id=split_id, dataset=DATASET, num_classes=k, unseen=tuple(unseen), name=name,
        validation_unseen=tuple(val), sources=_SOURCE, notes=notes)


def split_sizes(k: int) -> dict[str, list[int]]:
    """Unseen-class counts per family for ``k`` classes, in the proportions of the
    papers: SynSE/SMIE/SA-DVAE 55/5-style (~1/8), STAR 55/5 and 48/12, PURLS 2/3 and 1/2
    seen, one-shot 50/10."""
    r = lambda x: max(1, int(round(x)))  # noqa: E731
    return {"synse": [r(k / 8)], "smie": [r(k / 8)] * 3,
            "star": [r(k * 5 / 60), r(k * 12 / 60)],
            "purls": [k - r(2 * k / 3), k - r(k / 2)], "one_shot": [r(k * 10 / 60)],
            "sa_dvae": [r(k / 8)] * 3}


def builtin_splits(class_primitives: list[Composition], seed: int) -> dict[str, list[ClassSplit]]:
    """family -> class splits for classes with compositions ``class_primitives``.

    Each family draws from its own random stream (seeded by its position in the family
    tuple), so a family appended at the end leaves every earlier family's splits unchanged.
    """
    sets = [primitive_set(c) for c in class_primitives]
    k = len(sets)
    sizes = split_sizes(k)
    n_val = max(1, int(round(k / 8)))
    out: dict[str, list[ClassSplit]] = {}
    for fam_index, family in enumerate(FAMILIES):
        rng = np.random.default_rng([seed, 7919, fam_index])
        splits: list[ClassSplit] = []
        used: set[int] = set()
        for i, u in enumerate(sizes[family]):
            if family in FOLD_STYLE:  # three folds with pairwise disjoint unseen sets
                sid = f"synthetic_{family}_fold{i}"
                name = f"synthetic {FOLD_STYLE[family]} fold {i}"
            else:
                sid = f"synthetic_{family}_{k - u}_{u}"
                name = f"synthetic {family}-style {k - u}/{u}"
            split = _split(sets, sid, name, u, min(n_val, k - u - 1), rng,
                           exclude=used if family in FOLD_STYLE else set())
            used |= set(split.unseen)
            split.validate(where="synthetic builtin splits")
            splits.append(split)
        out[family] = splits
    return out
