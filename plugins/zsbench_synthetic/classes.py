"""Classes as compositions of primitives: selection (deterministic from the seed) and
naming.

A composition maps every slot of ``primitives.SLOTS`` to a primitive name. Its primitive
set (``primitive_set``) is what the split constraint is about: an unseen class may only use
primitives that some seen class uses too.
"""
from __future__ import annotations

import itertools

import numpy as np

from zsbench.api import ZsbenchError

from .primitives import NEUTRAL, PRIMITIVES, SLOTS, primitive_id
from .vocab import VOCAB, arm_words

Composition = dict[str, str]
_BODY_SLOTS = ("right_arm", "left_arm", "legs", "torso")
_PHRASE_P_SOLO = (0.3, 0.45, 0.25)   # probability of 1, 2, 3 performer phrases
_PHRASE_P_PAIR = (0.6, 0.4)          # two-person classes: 1 or 2 performer phrases


def primitive_set(comp: Composition) -> frozenset[str]:
    """Every primitive a composition uses ("slot:name"), neutral ones included; a class
    without a second person uses no partner primitive."""
    return frozenset(primitive_id(slot, comp[slot]) for slot in SLOTS
                     if not (slot == "partner" and comp[slot] == "none"))


def phrases(comp: Composition) -> list[tuple[str, dict[str, str]]]:
    """The (vocab key, placeholder values) of every active primitive in naming order:
    arms (right, left, or both when they do the same), legs, torso, then the partner."""
    out: list[tuple[str, dict[str, str]]] = []
    r, l = comp["right_arm"], comp["left_arm"]
    if r != "hold" and r == l:
        out.append((f"arm:{r}", arm_words("both")))
    else:
        for side, prim in (("right", r), ("left", l)):
            if prim != "hold":
                out.append((f"arm:{prim}", arm_words(side)))
    for slot in ("legs", "torso", "partner"):
        if comp[slot] != NEUTRAL[slot]:
            out.append((f"{slot}:{comp[slot]}", {}))
    return out


def class_name(comp: Composition) -> str:
    """e.g. "wave right hand overhead while squatting, facing a partner who bows"."""
    items = phrases(comp)
    solo = [(k, w) for k, w in items if not k.startswith("partner:")]
    pair = [k for k, _ in items if k.startswith("partner:")]
    if not solo:
        raise ZsbenchError("synthetic: a class needs at least one performer primitive")
    name = VOCAB[solo[0][0]]["name"].format(**solo[0][1])
    rest = [VOCAB[k]["gerund"].format(**w) for k, w in solo[1:]]
    if rest:
        name += " while " + " and ".join(rest)
    if pair:
        name += ", " + VOCAB[pair[0]]["name"]
    return name


def _candidates(vocab: dict[str, list[str]], partners: list[str]) -> list[Composition]:
    options = [["hold", *vocab["right_arm"]], ["hold", *vocab["left_arm"]],
               ["stand", *vocab["legs"]], ["upright", *vocab["torso"]]]
    out = []
    for combo in itertools.product(*options):
        comp = dict(zip(_BODY_SLOTS, combo))
        for partner in ["none", *partners]:
            c = {**comp, "partner": partner}
            n_solo = sum(1 for k, _ in phrases(c) if not k.startswith("partner:"))
            if 1 <= n_solo <= 3:
                out.append(c)
    return out


def _vocabulary(num_classes: int, rng: np.random.Generator) -> dict[str, list[str]]:
    """Active primitives in use: fewer for small class counts, so that every primitive is
    shared by several classes (the split constraint needs that)."""
    pool = [(slot, p) for slot in _BODY_SLOTS for p in PRIMITIVES[slot] if p != NEUTRAL[slot]]
    size = int(np.clip(round(0.55 * num_classes), 8, len(pool)))
    chosen: list[tuple[str, str]] = []
    for group, need in ((("right_arm", "left_arm"), 3), (("legs",), 2), (("torso",), 2)):
        members = [x for x in pool if x[0] in group]
        pick = rng.choice(len(members), size=need, replace=False)
        chosen += [members[i] for i in pick]
    rest = [x for x in pool if x not in chosen]
    extra = rng.choice(len(rest), size=max(0, size - len(chosen)), replace=False)
    chosen += [rest[i] for i in extra]
    vocab = {slot: [p for p in PRIMITIVES[slot] if (slot, p) in chosen] for slot in _BODY_SLOTS}
    return vocab


def select_classes(num_classes: int, two_person_fraction: float,
                   rng: np.random.Generator) -> list[Composition]:
    """Pick ``num_classes`` distinct compositions, balancing how often each primitive is
    used, with ``round(two_person_fraction * num_classes)`` two-person classes."""
    n_pair = int(round(two_person_fraction * num_classes))
    vocab = _vocabulary(num_classes, rng)
    n_partner = min(len(PRIMITIVES["partner"]) - 1, max(1, n_pair // 2)) if n_pair else 0
    partners = list(rng.choice(PRIMITIVES["partner"][1:], size=n_partner, replace=False))
    cands = _candidates(vocab, [str(p) for p in partners])
    neutral = {primitive_id(s, p) for s, p in NEUTRAL.items()}
    sets = [primitive_set(c) - neutral for c in cands]
    prims = sorted(set().union(*sets))
    col = {p: i for i, p in enumerate(prims)}
    member = np.zeros((len(cands), len(prims)))
    for i, ps in enumerate(sets):
        member[i, [col[p] for p in ps]] = 1.0
    n_solo = np.array([sum(1 for k, _ in phrases(c) if not k.startswith("partner:"))
                       for c in cands])
    is_pair = np.array([c["partner"] != "none" for c in cands])
    # both arms doing the same thing covers two primitives with one phrase: keep it rarer
    both = np.array([c["right_arm"] == c["left_arm"] != "hold" for c in cands])
    targets = [(False, int(k)) for k in rng.choice([1, 2, 3], size=num_classes - n_pair,
                                                   p=_PHRASE_P_SOLO)]
    targets += [(True, int(k)) for k in rng.choice([1, 2], size=n_pair, p=_PHRASE_P_PAIR)]
    targets = [targets[i] for i in rng.permutation(len(targets))]
    used = np.zeros(len(prims))
    taken = np.zeros(len(cands), dtype=bool)
    chosen: list[Composition] = []
    for pair, k in targets:
        ok = ~taken & (is_pair == pair)
        exact = ok & (n_solo == k)
        ok = exact if exact.any() else ok
        if not ok.any():
            raise ZsbenchError(
                f"synthetic: cannot build {num_classes} distinct classes "
                f"(two_person_fraction={two_person_fraction}); lower num_classes")
        # prefer primitives used fewer than twice so far, then rarely used ones
        score = member @ (3.0 * (used < 2) - used) - 4.0 * both \
            + rng.random(len(cands)) * 0.5
        best = int(np.argmax(np.where(ok, score, -np.inf)))
        taken[best] = True
        chosen.append(cands[best])
        used += member[best]
    return chosen
