"""Class texts of every kind, generated from the primitives of each class.

Kinds (each maps to one list of strings per class):

* ``name``: the class name.
* ``description``: one or two complete sentences describing the whole action (SMIE/PGFA).
* ``motion``: a joint-level description naming the joints that move and how.
* ``parts``: one description per body part, in the order head, hands, arms, hips, legs,
  feet (GAP/STAR style).
* ``phases``: start, middle and end of the action (Neuron style).
* ``context``: three to five short sentences about where or why someone does it (DVTA).

Primitive wording is fixed (``vocab.py``); the sentence frames vary per class, chosen
deterministically from the seed.
"""
from __future__ import annotations

import numpy as np

from .classes import Composition, class_name, phrases
from .vocab import COMBINATION_CONTEXT, NEUTRAL_PARTS, PAIR_CONTEXT, PARTS, VOCAB

TEXT_KINDS = ("name", "description", "motion", "parts", "phases", "context")

_SUBJECTS = ("A person", "Someone", "The performer", "A standing person")
_START = ("At the beginning,", "First,", "To start,")
_MIDDLE = ("In the middle,", "Then,", "Next,")
_END = ("At the end,", "Finally,", "Lastly,")


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _join(items: list[str], pair: str = " and ") -> str:
    """'a', 'a and b' (``pair`` joins two), 'a, b, and c' (three or more)."""
    if len(items) <= 1:
        return "".join(items)
    if len(items) == 2:
        return items[0] + pair + items[1]
    return ", ".join(items[:-1]) + ", and " + items[-1]


def _fill(key: str, words: dict[str, str], field: str) -> str:
    return VOCAB[key][field].format(**words)


def _split(comp: Composition):
    items = phrases(comp)
    solo = [(k, w) for k, w in items if not k.startswith("partner:")]
    pair = [k for k, _ in items if k.startswith("partner:")]
    return solo, pair


def describe(comp: Composition, style: int) -> str:
    solo, pair = _split(comp)
    subject = _SUBJECTS[style % len(_SUBJECTS)]
    first = _fill(*solo[0], "desc")
    if style % 2 == 0 or len(solo) == 1:
        rest = [_fill(k, w, "desc_ing") for k, w in solo[1:]]
        text = f"{subject} {first}" + (f" while {_join(rest)}" if rest else "") + "."
    else:
        rest = [_fill(k, w, "desc") for k, w in solo[1:]]
        text = f"{subject} {first}. At the same time, the person {_join(rest)}."
    if pair:
        text += f" {_cap(VOCAB[pair[0]]['desc'])}."
    return text


def motion(comp: Composition, style: int) -> str:
    solo, pair = _split(comp)
    clauses = [_fill(k, w, "motion") for k, w in solo]
    if len(solo) == 1:
        clauses.append("the rest of the body stays still")
    clauses += [VOCAB[k]["motion"] for k in pair]
    if style % 3 == 0:
        return _cap("; ".join(clauses)) + "."
    if style % 3 == 1:
        return " ".join(_cap(c) + "." for c in clauses)
    return _cap(clauses[0]) + (", while " + _join(clauses[1:]) if clauses[1:] else "") + "."


def parts(comp: Composition, style: int) -> list[str]:
    solo, pair = _split(comp)
    out = []
    for part in PARTS:
        said = [VOCAB[k]["parts"][part].format(**w) for k, w in solo if part in VOCAB[k]["parts"]]
        if not said:
            said = [NEUTRAL_PARTS[part]]
        said += [VOCAB[k]["parts"][part] for k in pair if part in VOCAB[k]["parts"]]
        body = _join(said, ", while ")
        if style % 3 == 0:
            out.append(_cap(body) + ".")
        elif style % 3 == 1:
            out.append(f"{_cap(part)}: {body}.")
        else:
            out.append(f"In this action {body}.")
    return out


def phases(comp: Composition, style: int) -> list[str]:
    solo, pair = _split(comp)
    out = []
    for i, frames in enumerate((_START, _MIDDLE, _END)):
        acts = [VOCAB[k]["phases"][i].format(**w) for k, w in solo]
        text = f"{frames[style % len(frames)]} the person {_join(acts)}."
        if pair:
            text += f" {_cap(VOCAB[pair[0]]['phases'][i])}."
        out.append(text)
    return out


def context(comp: Composition, rng: np.random.Generator) -> list[str]:
    solo, pair = _split(comp)
    main = [s.format(**solo[0][1]) for s in VOCAB[solo[0][0]]["context"]]
    pool = [s.format(**w) for k, w in solo[1:] for s in VOCAB[k]["context"]]
    pool += [s for k in pair for s in VOCAB[k]["context"]]
    count = int(rng.integers(3, 6))
    picked = [main[i] for i in rng.permutation(len(main))[:2]]
    picked += [pool[i] for i in rng.permutation(len(pool))[:max(0, count - 3)]]
    if pair:
        picked.append(PAIR_CONTEXT[int(rng.integers(len(PAIR_CONTEXT)))])
    picked = list(dict.fromkeys(picked))  # the same arm primitive on both sides repeats
    for i in rng.permutation(len(COMBINATION_CONTEXT)):
        if len(picked) >= count:
            break
        if COMBINATION_CONTEXT[i] not in picked:
            picked.append(COMBINATION_CONTEXT[i])
    return picked[:5]


def class_texts(comps: list[Composition], rng: np.random.Generator) -> dict[str, list[list[str]]]:
    """kind -> one list of strings per class (class order of ``comps``)."""
    out: dict[str, list[list[str]]] = {k: [] for k in TEXT_KINDS}
    styles = rng.integers(0, 12, size=(len(comps), 4))
    for comp, (s_desc, s_mot, s_parts, s_phase) in zip(comps, styles):
        out["name"].append([class_name(comp)])
        out["description"].append([describe(comp, int(s_desc))])
        out["motion"].append([motion(comp, int(s_mot))])
        out["parts"].append(parts(comp, int(s_parts)))
        out["phases"].append(phases(comp, int(s_phase)))
        out["context"].append(context(comp, rng))
    return out
