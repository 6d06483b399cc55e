"""Verb / noun split of action labels (SynSE's part-of-speech text inputs; JPoSE uses it too).

SynSE ships its verb and noun phrases only as precomputed vocabularies, and which tagger
made them is not recorded in its repository. zsbench therefore uses a **small deterministic
rule set** (no model, no download, the same output on every machine). The output for every
NTU-120 and PKU-MMD name is pinned in ``tests/fixtures/synse_pos_ntu120.tsv``.

Rules, applied to the lower-cased label:

1. Parenthesised asides are dropped (``"touch head (headache)"`` -> ``"touch head"``;
   ``keep_parentheses=True`` keeps their words). ``/`` separates alternatives, ``,``
   ``and`` ``or`` ``while`` ``who`` start a new clause.
2. A word is a **verb** when
   * it is an ``-ing`` form (of a lexicon verb, or any word of 6+ letters ending in ``ing``
     that is neither a lexicon base form like "swing" nor a known ``-ing`` noun such as
     "something"), or
   * it is the *first word of a clause* and the base form of a lexicon verb
     (``"drink water"``, ``"cheers and drink"``), or
   * it follows ``who`` and is a lexicon verb in any form (``"a partner who bows"``).
   Base forms elsewhere are nouns (``"bounce ball"``, ``"tennis bat swing"``); plural
   ``-s`` forms at the start of a clause are nouns (``"hands up"``, ``"arm circles"``).
   Hyphenated words are never verbs (``"finger-guessing game"``, ``"high-five"``).
3. A particle right after a verb joins the verb phrase: ``up down off out over away apart``
   always, ``on`` only after ``put wear try turn switch``, and the adverbs ``forward(s)
   backward(s) sideways together around aside overhead still again``.
4. Every other word that is not a function word (articles, prepositions, conjunctions,
   stray particles and adverbs) goes to the noun phrase.
5. Each phrase keeps the label's word order; alternatives separated by ``/`` in the label
   stay separated by ``/`` (``"eat meal/snack"`` -> ``("eat", "meal/snack")``).
6. A label with no verb uses the whole (parenthesis-free) label as its verb phrase, and one
   with no noun uses it as its noun phrase (``"clapping"`` -> ``("clapping",
   "clapping")``): every class needs both texts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

__all__ = ["split_label", "analyse", "PosSplit", "VERBS"]

# Base forms of action verbs. Covers the NTU-60/120, PKU-MMD and embedded-benchmark labels
# and common action vocabulary; words not listed are treated as nouns unless they are
# -ing forms (rule 2).
VERBS = frozenset("""
answer apply arrange bend blow bounce bow box brush carry catch check cheer chop circle
clap clean climb close comb count crawl cross crouch cut dance draw dress drink drive drop
dry eat exchange fall feel fight flick flip fold follow grab greet hammer hang hit
hold hop hug hush jog juggle jump kick kneel knock laugh lean lie lift look lower make
massage move nod open pat pick pickup place play point pour pull punch push put raise
reach read rest ride rock roll rotate rub run salute say scratch shake shoot shout show
shrug sing sit skip slap slide smell sneeze cough sniff snap spin spit squat stagger stamp
stand staple step stir stretch strike support sweep swim swing take talk tap tear throw
tie tilt toss touch turn twist type use vomit walk wash watch wave wear whisper wield wipe
write yawn ball call try switch face
""".split())

# -ing words that are nouns (rule 2).
ING_NOUNS = frozenset("""
something nothing anything everything thing ring king morning evening ceiling string
spring wing building clothing sibling sling pudding wedding bedding
""".split())

PARTICLES = frozenset("up down off out over away apart".split())
ADVERBS = frozenset("forward forwards backward backwards sideways together around aside "
                     "overhead still again".split())
ON_VERBS = frozenset("put wear try turn switch".split())

FUNCTION_WORDS = frozenset("""
a an the to of at in into inside onto on from with without by for towards toward about
against and or while who is are it its his her their this that these those
""".split()) | PARTICLES | ADVERBS

CLAUSE_STARTERS = frozenset(["and", "or", "while", "who", ","])

_TOKEN = re.compile(r"[a-z0-9][a-z0-9'\-]*|/|,")


@dataclass(frozen=True)
class PosSplit:
    """The split of one label, with the word tags behind it (for tests and docs)."""

    label: str
    verb: str
    noun: str
    verb_fallback: bool   # no verb found: ``verb`` is the whole label
    noun_fallback: bool   # no noun found: ``noun`` is the whole label
    tags: tuple[tuple[str, str], ...]  # (word, "V" | "N" | "-")


def _normalise(name: str, keep_parentheses: bool) -> str:
    text = name.replace("\u2019", "'").replace("\u2018", "'").lower()
    if keep_parentheses:
        text = text.replace("(", " ").replace(")", " ")
    else:
        text = re.sub(r"\([^()]*\)", " ", text)
        text = text.replace("(", " ").replace(")", " ")
    return " ".join(text.split())


def _bases(word: str) -> Iterable[str]:
    """Candidate base forms of an inflected word (crude English morphology)."""
    yield word
    if word.endswith("ies") and len(word) > 4:
        yield word[:-3] + "y"
    if word.endswith("es") and len(word) > 3:
        yield word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 2:
        yield word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) > len(suffix) + 1:
            stem = word[:-len(suffix)]
            yield stem
            yield stem + "e"
            if len(stem) > 2 and stem[-1] == stem[-2]:
                yield stem[:-1]          # hopping -> hop, clapping -> clap
            if stem.endswith("y"):
                yield stem[:-1] + "ie"   # lying -> lie


def _lexicon_base(word: str) -> str | None:
    return next((b for b in _bases(word) if b in VERBS), None)


def _is_ing_verb(word: str) -> bool:
    if "-" in word or not word.endswith("ing") or word in ING_NOUNS or word in VERBS:
        return False               # "swing", "sing" are base forms
    stem = word[:-3]
    candidates = [stem, stem + "e"] + ([stem[:-1]] if len(stem) > 2 and stem[-1] == stem[-2]
                                       else [])
    return any(b in VERBS for b in candidates) or len(word) >= 6


def _tag(words: list[str]) -> list[str]:
    """'V' verb, 'P' particle joined to the verb, 'N' noun-phrase word, '-' dropped."""
    tags: list[str] = []
    clause_start, after_who = True, False
    for i, w in enumerate(words):
        if w in ("/", ","):
            tags.append("-")
            clause_start, after_who = True, False
            continue
        prev_verb = i > 0 and tags[-1] in ("V", "P") and words[i - 1] not in ("/", ",")
        if prev_verb and (w in PARTICLES or w in ADVERBS or
                          (w == "on" and _lexicon_base(words[i - 1]) in ON_VERBS)):
            tags.append("P")
            continue
        if w in CLAUSE_STARTERS:
            tags.append("-")
            clause_start, after_who = True, w == "who"
            continue
        if w in FUNCTION_WORDS:
            tags.append("-")
            clause_start = False
            continue
        verb = False
        if "-" not in w:
            if _is_ing_verb(w):
                verb = True
            elif after_who and _lexicon_base(w) is not None:
                verb = True
            elif clause_start and w in VERBS:
                verb = True
        tags.append("V" if verb else "N")
        clause_start, after_who = False, False
    return tags


def _render(words: list[str], tags: list[str], keep: set[str]) -> str:
    """Words whose tag is in ``keep``, in order; ``/`` between alternatives."""
    groups: list[list[str]] = [[]]
    for w, t in zip(words, tags):
        if w == "/":
            groups.append([])
        elif t in keep:
            groups[-1].append(w)
    return "/".join(" ".join(g) for g in groups if g)


def analyse(name: str, keep_parentheses: bool = False) -> PosSplit:
    """Split ``name`` and say how (see the module docstring for the rules)."""
    label = _normalise(name, keep_parentheses)
    words = _TOKEN.findall(label)
    if not words or all(w in ("/", ",") for w in words):
        raise ValueError(f"cannot split an empty class label {name!r}")
    tags = _tag(words)
    whole = " ".join(label.split())
    verb = _render(words, tags, {"V", "P"})
    noun = _render(words, tags, {"N"})
    return PosSplit(label=name, verb=verb or whole, noun=noun or whole,
                    verb_fallback=not verb, noun_fallback=not noun,
                    tags=tuple((w, {"P": "V"}.get(t, t)) for w, t in zip(words, tags)))


def split_label(name: str, keep_parentheses: bool = False) -> tuple[str, str]:
    """``(verb_phrase, noun_phrase)`` of a class label, e.g.
    ``split_label("take off a hat/cap") == ("take off", "hat/cap")``."""
    s = analyse(name, keep_parentheses)
    return s.verb, s.noun
