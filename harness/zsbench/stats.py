"""Statistics over runs: per-cell spread over seeds, paired tests between two sets of runs,
a paired bootstrap over test samples, and the tables that show them.

Units. A *observation* is one fold of one record (``Observation``): its metrics, its seed
and, when the record has them, the per-sample correctness bits the core's evaluation writes
into the fold details (``details["sample_correct"]``, see ``pack_bits``).

* ``seed_stats(values)``: n, mean, sample standard deviation (ddof=1) and the two-sided 95%
  Student-t confidence interval of the mean, ``mean -/+ t(0.975, n-1) * std / sqrt(n)``.
* ``paired_test(a, b)``: Wilcoxon signed-rank (``scipy.stats.wilcoxon``, two-sided) or
  paired t (``scipy.stats.ttest_rel``) over matched (protocol, dataset, fold, seed) pairs.
  ``auto`` takes Wilcoxon from 6 pairs on and the paired t below (with 5 pairs or fewer the
  exact two-sided Wilcoxon p-value cannot go below 0.0625, so it could never be significant
  at 0.05).
* ``bootstrap_diff(pairs, metric)``: the paired bootstrap over test samples. For each
  matched fold pair the test samples are resampled with replacement (seen and unseen
  samples separately for the GZSL metrics), the same resampled samples scoring both runs;
  the statistic is the mean over pairs of (metric of A - metric of B). Resampling the
  samples of a pair is drawing the counts of its four (A right/wrong x B right/wrong)
  sample kinds from a multinomial, which is what is done here: exact and cheap.
"""
from __future__ import annotations

import base64
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .api import ZsbenchError
from .results import METRICS, ResultRecord

ALPHA = 0.05
LABELS = {"zsl_acc": "ZSL acc", "gzsl_acc_seen": "GZSL S", "gzsl_acc_unseen": "GZSL U",
          "gzsl_h": "GZSL H"}


# ---------------------------------------------------------------------------------------
# Per-sample correctness, as the evaluation stores it
# ---------------------------------------------------------------------------------------
def pack_bits(correct: np.ndarray) -> str:
    """Booleans (test-sample order) -> base64 of ``np.packbits`` (8 samples a byte)."""
    return base64.b64encode(np.packbits(np.asarray(correct, dtype=bool)).tobytes()).decode("ascii")


def unpack_bits(text: str, n: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(base64.b64decode(text), dtype=np.uint8))
    if len(bits) < n or len(bits) - n >= 8:
        raise ZsbenchError(f"per-sample correctness holds {len(bits)} bits for {n} samples")
    return bits[:n].astype(bool)


# ---------------------------------------------------------------------------------------
# Seeds
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SeedStats:
    n: int
    mean: float | None
    std: float | None
    ci_low: float | None
    ci_high: float | None

    def text(self, ci: bool = False) -> str:
        if self.mean is None:
            return "-"
        if self.std is None:
            return f"{self.mean:.2f} (n=1)"
        out = f"{self.mean:.2f} ± {self.std:.2f}"
        if ci and self.ci_low is not None and self.ci_high is not None:
            out += f" [{self.ci_low:.2f}, {self.ci_high:.2f}]"
        return out


def seed_stats(values: Iterable[float | None], level: float = 0.95) -> SeedStats:
    from scipy import stats as st

    vals = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    n = len(vals)
    if n == 0:
        return SeedStats(0, None, None, None, None)
    mean = float(vals.mean())
    if n == 1:
        return SeedStats(1, mean, None, None, None)
    std = float(vals.std(ddof=1))
    half = float(st.t.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n)
    return SeedStats(n, mean, std, mean - half, mean + half)


# ---------------------------------------------------------------------------------------
# Paired tests
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairedTest:
    test: str                # "wilcoxon" | "ttest"
    n: int
    mean_diff: float         # mean of (a - b)
    statistic: float | None
    p_value: float | None
    alpha: float
    note: str = ""

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < self.alpha


def choose_test(test: str, n: int) -> str:
    if test not in ("auto", "wilcoxon", "ttest"):
        raise ZsbenchError(f"unknown test {test!r}; use auto, wilcoxon or ttest")
    return test if test != "auto" else ("wilcoxon" if n >= 6 else "ttest")


def paired_test(a: Sequence[float], b: Sequence[float], test: str = "auto",
                alpha: float = ALPHA) -> PairedTest:
    """Two-sided paired test of ``a`` against ``b`` (matched element by element)."""
    from scipy import stats as st

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ZsbenchError(f"paired test needs two equal-length lists, got {x.shape} and {y.shape}")
    n = len(x)
    kind = choose_test(test, n)
    d = x - y
    mean_diff = float(d.mean()) if n else float("nan")
    if n < 2:
        return PairedTest(kind, n, mean_diff, None, None, alpha, "fewer than 2 pairs: no test")
    if np.all(d == 0):
        return PairedTest(kind, n, 0.0, None, 1.0, alpha, "identical values in every pair")
    if kind == "wilcoxon":
        res = st.wilcoxon(x, y)
        note = "" if n >= 6 else f"with {n} pairs Wilcoxon cannot reach p < 0.05"
    else:
        if np.all(d == d[0]):   # no spread of the differences: t is infinite
            return PairedTest(kind, n, mean_diff, math.copysign(math.inf, d[0]), 0.0, alpha,
                              "the same difference in every pair")
        res = st.ttest_rel(x, y)
        note = ""
    return PairedTest(kind, n, mean_diff, float(res.statistic), float(res.pvalue), alpha, note)


# ---------------------------------------------------------------------------------------
# Observations (one fold of one record)
# ---------------------------------------------------------------------------------------
@dataclass
class Observation:
    method: str
    variant: str
    protocol: str
    dataset: str
    fold: str
    split_id: str
    seed: int
    fingerprint: str
    metrics: dict[str, float | None]
    n_test_seen: int
    n_test_unseen: int
    correct: dict[str, str] = field(default_factory=dict)
    path: str = ""

    @property
    def cell(self) -> tuple[str, str, str, str]:
        """What stays fixed across seeds, the fold aside."""
        return (self.method, self.variant, self.protocol, self.dataset)

    @property
    def pair_key(self) -> tuple[str, str, str, int, str]:
        return (self.protocol, self.dataset, self.fold, self.seed, self.fingerprint)


def variant_of_record(path: Path | None) -> str:
    """The sweep variant of a record: ``cell.json`` beside it (written by ``zsbench
    sweep``), else ``-``."""
    if path is not None:
        cell = Path(path).parent / "cell.json"
        try:
            return str(json.loads(cell.read_text(encoding="utf-8"))["variant"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return "-"


#: record config keys that differ between the seeds and folds of one configuration
NOT_CONFIG = ("seed", "run_id", "out", "cache_dir", "data_root", "folds")


def config_key(rec: ResultRecord) -> str:
    """Short hash of a record's configuration, seeds, folds and locations aside."""
    import hashlib

    data = {k: v for k, v in rec.config.items() if k not in NOT_CONFIG}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:6]


def observations(records: Iterable[tuple[Path | None, ResultRecord]]) -> list[Observation]:
    """One observation per fold of each record. The variant is the sweep's (``cell.json``);
    for a record outside a sweep it is ``cfg-<hash>`` of its configuration, so runs of one
    method with different options are never pooled as if they were seeds."""
    out = []
    for path, rec in records:
        variant = variant_of_record(path)
        if variant == "-":
            variant = f"cfg-{config_key(rec)}"
        for f in rec.folds:
            bits = f.details.get("sample_correct")
            out.append(Observation(
                method=rec.plugin, variant=variant, protocol=rec.protocol, dataset=f.dataset,
                fold=f.name, split_id=f.split_id, seed=rec.seed, fingerprint=rec.data_fingerprint,
                metrics=dict(f.metrics), n_test_seen=f.n_test_seen, n_test_unseen=f.n_test_unseen,
                correct=dict(bits) if isinstance(bits, dict) else {},
                path=str(path) if path else ""))
    return out


def select(obs: list[Observation], where: Sequence[str]) -> list[Observation]:
    """Filter by ``key=value`` terms (keys: method/plugin, variant, protocol, dataset, fold)."""
    keys = {"plugin": "method", "method": "method", "variant": "variant",
            "protocol": "protocol", "dataset": "dataset", "fold": "fold"}
    for term in where:
        k, sep, v = term.partition("=")
        if not sep or k.strip() not in keys:
            raise ZsbenchError(f"--where {term!r}: expected KEY=VALUE with KEY one of "
                               f"{', '.join(sorted(keys))}")
        attr = keys[k.strip()]
        obs = [o for o in obs if str(getattr(o, attr)) == v.strip()]
    return obs


# ---------------------------------------------------------------------------------------
# Bootstrap over test samples
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bootstrap:
    metric: str
    n_pairs: int
    n_resamples: int
    diff: float                 # observed mean over pairs of (A - B), points
    ci_low: float
    ci_high: float
    level: float

    @property
    def significant(self) -> bool:
        return not (self.ci_low <= 0.0 <= self.ci_high)


def _pair_bits(a: Observation, b: Observation, metric: str) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(bits of A, bits of B, number of seen samples in front) for ``metric``, or None when
    either side lacks them."""
    key = "zsl" if metric == "zsl_acc" else "gzsl"
    if key not in a.correct or key not in b.correct:
        return None
    if (a.n_test_seen, a.n_test_unseen) != (b.n_test_seen, b.n_test_unseen):
        return None
    n_seen = 0 if key == "zsl" else a.n_test_seen
    n = a.n_test_unseen + n_seen
    return unpack_bits(a.correct[key], n), unpack_bits(b.correct[key], n), n_seen


def _table(ca: np.ndarray, cb: np.ndarray) -> np.ndarray:
    """Counts of the sample kinds (A right & B right, A right only, B right only, neither)."""
    return np.array([np.sum(ca & cb), np.sum(ca & ~cb), np.sum(~ca & cb), np.sum(~ca & ~cb)])


def _resample(counts: np.ndarray, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Accuracies (points) of A and B on ``size`` resamples of the samples in ``counts``."""
    n = int(counts.sum())
    if n == 0:
        return np.full(size, np.nan), np.full(size, np.nan)
    draws = rng.multinomial(n, counts / n, size=size)
    return 100.0 * (draws[:, 0] + draws[:, 1]) / n, 100.0 * (draws[:, 0] + draws[:, 2]) / n


def _harmonic(s: np.ndarray, u: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        h = 2 * s * u / (s + u)
    return np.where((s + u) > 0, h, 0.0)


def _metric_value(ca: np.ndarray, n_seen: int, metric: str) -> float:
    if metric == "zsl_acc":
        return 100.0 * float(ca.mean()) if len(ca) else float("nan")
    s = 100.0 * float(ca[:n_seen].mean()) if n_seen else float("nan")
    u = 100.0 * float(ca[n_seen:].mean()) if len(ca) > n_seen else float("nan")
    return {"gzsl_acc_seen": s, "gzsl_acc_unseen": u,
            "gzsl_h": float(_harmonic(np.array([s]), np.array([u]))[0])}[metric]


def bootstrap_diff(pairs: Sequence[tuple[Observation, Observation]], metric: str = "zsl_acc",
                   n_resamples: int = 2000, seed: int = 0, level: float = 0.95) -> Bootstrap | None:
    """Percentile interval of the mean over pairs of (A - B) under resampling of each pair's
    test samples; None when no pair carries per-sample correctness for ``metric``."""
    if metric not in METRICS:
        raise ZsbenchError(f"unknown metric {metric!r}; one of {', '.join(METRICS)}")
    rng = np.random.default_rng(seed)
    total = np.zeros(n_resamples)
    observed: list[float] = []
    used = 0
    for a, b in pairs:
        got = _pair_bits(a, b, metric)
        if got is None:
            continue
        ca, cb, n_seen = got
        seen, unseen = _table(ca[:n_seen], cb[:n_seen]), _table(ca[n_seen:], cb[n_seen:])
        if metric in ("zsl_acc", "gzsl_acc_unseen"):
            ra, rb = _resample(unseen, n_resamples, rng)
        elif metric == "gzsl_acc_seen":
            ra, rb = _resample(seen, n_resamples, rng)
        else:
            sa, sb = _resample(seen, n_resamples, rng)
            ua, ub = _resample(unseen, n_resamples, rng)
            ra, rb = _harmonic(sa, ua), _harmonic(sb, ub)
        total += ra - rb
        observed.append(_metric_value(ca, n_seen, metric) - _metric_value(cb, n_seen, metric))
        used += 1
    if used == 0:
        return None
    means = total / used
    lo, hi = np.nanpercentile(means, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return Bootstrap(metric, used, n_resamples, float(np.mean(observed)), float(lo), float(hi),
                     level)


# ---------------------------------------------------------------------------------------
# Matching two sets of runs
# ---------------------------------------------------------------------------------------
@dataclass
class Comparison:
    metric: str
    pairs: list[tuple[Observation, Observation]]
    unmatched_a: int
    unmatched_b: int
    test: PairedTest
    bootstrap: Bootstrap | None
    label_a: str
    label_b: str

    def lines(self) -> list[str]:
        t, m = self.test, LABELS.get(self.metric, self.metric)
        a = [p[0].metrics.get(self.metric) for p in self.pairs]
        b = [p[1].metrics.get(self.metric) for p in self.pairs]
        out = [f"{m}: A = {self.label_a}: {seed_stats(a).text()}   "
               f"B = {self.label_b}: {seed_stats(b).text()}   ({t.n} matched fold x seed pairs"
               + (f"; unmatched: {self.unmatched_a} in A, {self.unmatched_b} in B"
                  if self.unmatched_a or self.unmatched_b else "") + ")"]
        name = "Wilcoxon signed-rank" if t.test == "wilcoxon" else "paired t"
        p = "-" if t.p_value is None else f"{t.p_value:.4g}"
        stat = "-" if t.statistic is None else f"{t.statistic:.4g}"
        verdict = ("significant" if t.significant else "not significant") + f" at {t.alpha:g}"
        out.append(f"  A - B = {t.mean_diff:+.2f} points; {name}: statistic {stat}, "
                   f"p = {p}: {verdict}" + (f" ({t.note})" if t.note else ""))
        bs = self.bootstrap
        if bs is None:
            out.append("  bootstrap over test samples: not available (the records carry no "
                       "per-sample correctness for this metric)")
        else:
            out.append(f"  bootstrap over test samples ({bs.n_resamples} resamples, {bs.n_pairs} "
                       f"pairs): A - B = {bs.diff:+.2f}, {100 * bs.level:.0f}% interval "
                       f"[{bs.ci_low:+.2f}, {bs.ci_high:+.2f}]: "
                       + ("significant (0 outside)" if bs.significant else "not significant "
                          "(0 inside)"))
        return out


def match(a: list[Observation], b: list[Observation], metric: str
          ) -> tuple[list[tuple[Observation, Observation]], int, int]:
    """Pairs with equal (protocol, dataset, fold, seed, data fingerprint) and a value of
    ``metric`` on both sides; each side must hold one observation per key."""
    def index(obs: list[Observation], side: str) -> dict[tuple, Observation]:
        out: dict[tuple, Observation] = {}
        for o in obs:
            if o.metrics.get(metric) is None:
                continue
            if o.pair_key in out:
                other = out[o.pair_key]
                raise ZsbenchError(
                    f"runs {side} hold two records for fold {o.fold!r}, seed {o.seed} "
                    f"({other.method}/{other.variant} at {other.path} and {o.method}/{o.variant} "
                    f"at {o.path}); point at one method's folder or narrow it with --{side.lower()}-where")
            out[o.pair_key] = o
        return out

    ia, ib = index(a, "A"), index(b, "B")
    keys = [k for k in ia if k in ib]
    return [(ia[k], ib[k]) for k in keys], len(ia) - len(keys), len(ib) - len(keys)


def _label(obs: list[Observation]) -> str:
    names = sorted({f"{o.method}/{o.variant}" for o in obs})
    return ", ".join(names) if len(names) <= 3 else f"{len(names)} configurations"


def compare(a: list[Observation], b: list[Observation], metric: str = "zsl_acc",
            test: str = "auto", alpha: float = ALPHA, n_resamples: int = 2000,
            seed: int = 0) -> Comparison:
    pairs, ua, ub = match(a, b, metric)
    if not pairs:
        raise ZsbenchError(f"no fold x seed of A matches one of B for {metric} (matched on "
                           "protocol, dataset, fold, seed and data fingerprint)")
    va = [float(p[0].metrics[metric]) for p in pairs]   # type: ignore[arg-type]
    vb = [float(p[1].metrics[metric]) for p in pairs]   # type: ignore[arg-type]
    return Comparison(metric, pairs, ua, ub, paired_test(va, vb, test, alpha),
                      bootstrap_diff(pairs, metric, n_resamples, seed), _label(a), _label(b))


# ---------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------
ALL_FOLDS = "mean over folds"


def _fold_means(obs: list[Observation], metric: str) -> dict[int, float]:
    """Per seed, the mean over folds (only seeds that have every fold of the group)."""
    folds = {o.fold for o in obs}
    per_seed: dict[int, dict[str, float]] = {}
    for o in obs:
        v = o.metrics.get(metric)
        if v is not None:
            per_seed.setdefault(o.seed, {})[o.fold] = float(v)
    return {s: float(np.mean(list(v.values()))) for s, v in per_seed.items() if set(v) == folds}


def seed_rows(obs: list[Observation], metrics: Sequence[str] = METRICS
              ) -> list[tuple[tuple[str, str, str, str], str, dict[str, SeedStats]]]:
    """(cell, fold or ALL_FOLDS, metric -> stats over seeds)."""
    rows = []
    cells: dict[tuple, list[Observation]] = {}
    for o in obs:
        cells.setdefault(o.cell, []).append(o)
    for cell, members in cells.items():
        folds = list(dict.fromkeys(o.fold for o in members))
        for fold in folds:
            sel = [o for o in members if o.fold == fold]
            rows.append((cell, fold, {m: seed_stats(o.metrics.get(m) for o in sel) for m in metrics}))
        if len(folds) > 1:
            rows.append((cell, ALL_FOLDS,
                         {m: seed_stats(_fold_means(members, m).values()) for m in metrics}))
    return rows


def _paired_values(x: list[Observation], y: list[Observation], metric: str, fold: str
                   ) -> tuple[list[float], list[float]]:
    if fold == ALL_FOLDS:   # one pair per seed: the mean over folds
        fx, fy = _fold_means(x, metric), _fold_means(y, metric)
        seeds = sorted(set(fx) & set(fy))
        return [fx[s] for s in seeds], [fy[s] for s in seeds]
    ix = {o.seed: o.metrics.get(metric) for o in x if o.fold == fold}
    iy = {o.seed: o.metrics.get(metric) for o in y if o.fold == fold}
    seeds = sorted(s for s in set(ix) & set(iy) if ix[s] is not None and iy[s] is not None)
    return [float(ix[s]) for s in seeds], [float(iy[s]) for s in seeds]  # type: ignore[arg-type]


def seed_markdown(obs: list[Observation], metrics: Sequence[str] = ("zsl_acc", "gzsl_h"),
                  reference: str | None = None, test: str = "auto", alpha: float = ALPHA) -> str:
    """Markdown table: one row per (method, variant, protocol, dataset, fold) with mean ±
    std over seeds, the 95% interval and n; with ``reference`` (a method name) each row of
    another method is tested against the reference's row of the same variant, protocol,
    dataset and fold (paired over seeds) and marked ``*`` when the difference is significant."""
    rows = seed_rows(obs, metrics)
    by_cell: dict[tuple, list[Observation]] = {}
    for o in obs:
        by_cell.setdefault(o.cell, []).append(o)
    head = ["method", "variant", "protocol", "dataset", "fold", "seeds"]
    head += [LABELS.get(m, m) for m in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    marks = 0
    for cell, fold, st in rows:
        method, variant, protocol, dataset = cell
        cells = []
        for m in metrics:
            text = st[m].text(ci=True)
            ref_cell = (reference, variant, protocol, dataset)
            if reference and method != reference and ref_cell in by_cell and st[m].mean is not None:
                x, y = _paired_values(by_cell[cell], by_cell[ref_cell], m, fold)
                if len(x) >= 2 and paired_test(x, y, test, alpha).significant:
                    text += " *"
                    marks += 1
            cells.append(text)
        n = max((s.n for s in st.values()), default=0)
        lines.append("| " + " | ".join([method, variant, protocol, dataset, fold, str(n), *cells])
                     + " |")
    legend = ["", "Cells: mean ± standard deviation over seeds [95% t-interval of the mean]."]
    if reference:
        legend.append(f"`*`: significantly different from `{reference}` (same variant, protocol, "
                      f"dataset and fold; paired over seeds; test {test}, alpha {alpha:g})."
                      + ("" if marks else " No difference was significant."))
    return "\n".join(lines + legend) + "\n"


def seeds_section(records: Sequence[tuple[Path | None, ResultRecord]]) -> str:
    """For ``zsbench report``: the table over seeds, when some configuration was run with
    more than one seed (else empty)."""
    obs = observations(records)
    seeds: dict[tuple, set[int]] = {}
    for o in obs:
        seeds.setdefault((o.cell, o.fold), set()).add(o.seed)
    if max((len(v) for v in seeds.values()), default=0) < 2:
        return ""
    return "\n### over seeds\n\n" + seed_markdown(obs, METRICS)


def diagnostics_section(records: Sequence[tuple[Path | None, ResultRecord]],
                        base: Path | None = None) -> str:
    """For ``zsbench report``: the feature diagnostics table, when records have them."""
    table = diagnostics_markdown(records, base)
    return "\n### feature diagnostics (unseen test features)\n\n" + table if table else ""


def diagnostics_markdown(records: Iterable[tuple[Path | None, ResultRecord]],
                         base: Path | None = None) -> str:
    """Feature diagnostics (``diagnostics`` option) of the records that have them: Fisher
    ratio and silhouette of unseen-class test features before -> after alignment, and the
    t-SNE plot beside the record (linked relative to ``base``, the report's folder)."""
    lines = []
    for path, rec in records:
        for f in rec.folds:
            d = f.details.get("feature_diagnostics")
            if not isinstance(d, dict):
                continue
            before, after = d.get("before") or {}, d.get("after") or {}
            fisher, sil = (f"{_num(before.get(k))} → {_num(after.get(k))}"
                           for k in ("fisher_ratio", "silhouette"))
            link = "-"
            if isinstance(plot := d.get("tsne"), str):
                where = Path(path).parent / plot if path else Path(plot)
                if base is not None and path:
                    where = Path(os.path.relpath(where.absolute(), Path(base).absolute()))
                link = f"![t-SNE]({where.as_posix()})"
            lines.append(f"| {rec.plugin} | {variant_of_record(path)} | {f.name} | s{rec.seed} "
                         f"| {fisher} | {sil} | {link} |")
    if not lines:
        return ""
    head = ("| method | variant | fold | seed | Fisher ratio (before → after) | silhouette "
            "(before → after) | t-SNE |\n|---|---|---|---|---|---|---|\n")
    return head + "\n".join(lines) + "\n"


def _num(v: Any) -> str:
    return "-" if v is None else f"{float(v):.3f}"
