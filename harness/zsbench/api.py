"""The data types that flow between the core and plugins.

Data flow (one direction)::

    dataset plugin -> SkeletonDataset
    protocol + split file -> ClassSplit -> Fold (index arrays)
    text sources -> per-class texts -> text encoder -> ClassTexts (embeddings)
    skeleton encoder -> features (or raw sequences for end-to-end methods)
    method.fit(TrainView) -> method.score(TestView, ClassTexts) -> (N, K) scores
    core decision rule -> metrics -> ResultRecord

Nothing here imports torch: arrays are numpy; methods convert to tensors themselves.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from pydantic import BaseModel


class ZsbenchError(Exception):
    """An error with a message meant for the user (the CLI prints it without a traceback)."""


class LeakageError(ZsbenchError):
    """Raised when unseen-class information would reach training."""


class DataFileError(ZsbenchError):
    """A data file (array, archive, pickle, checkpoint, store) is missing, truncated or
    corrupt. The message names the file and says what to do (re-prepare, delete the cache)."""


class PluginError(ZsbenchError):
    """A plugin's own code raised an unexpected exception; the message names the plugin,
    its file and line (the CLI prints it without a traceback, ZSBENCH_DEBUG=1 shows it)."""


# --------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------
@dataclass
class SkeletonDataset:
    """A dataset as the core sees it.

    ``data`` has shape (N, C, T, V, M) (channels, frames, joints, bodies), float32, and may
    be a ``np.memmap`` so that large datasets are not held in memory. ``labels`` are global
    0-based class indices. ``meta`` holds per-sample integer columns used by sample rules
    (``subject``, ``camera``, ``setup``, ``replication``; 1-based ids like NTU file names).
    ``partitions`` maps a sample-rule name (``xsub``, ``xview``, ``xset``) to a boolean
    array, True = training part. ``texts`` maps a text kind to a file the dataset ships
    (the embedded benchmark ships all kinds). ``builtin_splits`` maps a protocol family to
    the class splits the dataset defines itself (the embedded benchmark's own folds; real
    datasets take theirs from ``splits/``, matched by ``split_key``).
    """

    name: str
    class_names: list[str]
    labels: np.ndarray
    data: np.ndarray
    fingerprint: str
    meta: dict[str, np.ndarray] = field(default_factory=dict)
    partitions: dict[str, np.ndarray] = field(default_factory=dict)
    texts: dict[str, Path] = field(default_factory=dict)
    builtin_splits: dict[str, list["ClassSplit"]] = field(default_factory=dict)
    sample_names: list[str] | None = None
    layout: str = "ntu25"
    #: key of the shipped split files whose class indices this dataset follows (``ntu60``,
    #: ``ntu120``, ``pku_mmd1``, ``pku_mmd2``); the runner fills it from
    #: ``DatasetSpec.split_key`` when the loader leaves it None
    split_key: str | None = None

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.data.ndim != 5:
            raise ZsbenchError(
                f"dataset {self.name!r}: data must have shape (N, C, T, V, M), got {self.data.shape}")
        if len(self.labels) != len(self.data):
            raise ZsbenchError(
                f"dataset {self.name!r}: {len(self.labels)} labels for {len(self.data)} samples")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise ZsbenchError(
                f"dataset {self.name!r}: labels outside 0..{len(self.class_names) - 1}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.labels)


# --------------------------------------------------------------------------------------
# Splits and folds
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClassSplit:
    """One class split: which classes are unseen (0-based), plus optional validation
    classes carved from the seen classes (used for gamma / model selection, never the test
    set). ``seen`` defaults to every class not unseen. ``excluded`` classes are in neither."""

    id: str
    dataset: str
    num_classes: int
    unseen: tuple[int, ...]
    name: str = ""
    seen: tuple[int, ...] | None = None
    validation_unseen: tuple[int, ...] | None = None
    sources: tuple[str, ...] = ()
    notes: str = ""

    @property
    def seen_classes(self) -> tuple[int, ...]:
        if self.seen is not None:
            return tuple(self.seen)
        u = set(self.unseen)
        return tuple(c for c in range(self.num_classes) if c not in u)

    def validate(self, where: str = "") -> None:
        loc = f"{where}: split {self.id!r}" if where else f"split {self.id!r}"
        seen, unseen = set(self.seen_classes), set(self.unseen)
        bad = [c for c in list(seen) + list(unseen) if not 0 <= c < self.num_classes]
        if bad:
            raise ZsbenchError(f"{loc}: class indices {sorted(bad)} outside 0..{self.num_classes - 1}")
        if seen & unseen:
            raise ZsbenchError(f"{loc}: classes {sorted(seen & unseen)} are both seen and unseen")
        if not unseen:
            raise ZsbenchError(f"{loc}: no unseen classes")
        if self.validation_unseen is not None:
            outside = set(self.validation_unseen) - seen
            if outside:
                raise ZsbenchError(
                    f"{loc}: validation classes {sorted(outside)} are not seen classes")


@dataclass
class Fold:
    """A class split applied to a dataset's samples (global sample indices)."""

    name: str
    dataset: str
    split: ClassSplit
    train: np.ndarray          # training-part samples of seen classes
    test_unseen: np.ndarray    # test-part samples of unseen classes (ZSL test set)
    test_seen: np.ndarray      # test-part samples of seen classes (added for GZSL)
    sample_rule: str = ""
    support: np.ndarray | None = None  # one-shot support samples (excluded from scoring)
    # Folds with the same group are aggregated together (e.g. "55/5"; "" = one group).
    group: str = ""
    # The dataset the index arrays refer to when it is not the protocol's input dataset
    # (cross-dataset folds index a merged two-dataset SkeletonDataset); None = the input.
    data_source: SkeletonDataset | None = None

    @property
    def seen(self) -> np.ndarray:
        return np.asarray(self.split.seen_classes, dtype=np.int64)

    @property
    def unseen(self) -> np.ndarray:
        return np.asarray(sorted(self.split.unseen), dtype=np.int64)


# --------------------------------------------------------------------------------------
# Texts
# --------------------------------------------------------------------------------------
@dataclass
class ClassTexts:
    """Texts and embeddings for a set of classes, typed by kind.

    ``texts[kind][i]`` is the list of strings for class ``class_ids[i]``;
    ``embeddings[kind][i]`` is an array (n_i, D) with one row per string. A text bank for
    fit() holds only seen classes; the core builds it so (see ``ClassTexts.subset``).
    """

    class_ids: np.ndarray
    class_names: list[str]
    texts: dict[str, list[list[str]]]
    embeddings: dict[str, list[np.ndarray]]

    @property
    def kinds(self) -> list[str]:
        return list(self.embeddings)

    def __len__(self) -> int:
        return len(self.class_ids)

    def matrix(self, kind: str | None = None, reduce: Literal["mean", "first"] = "mean") -> np.ndarray:
        """(K, D) matrix: one row per class (mean of that class's embeddings by default)."""
        kind = kind or self.kinds[0]
        if kind not in self.embeddings:
            raise ZsbenchError(f"text kind {kind!r} not loaded; available: {self.kinds}")
        rows = [e.mean(axis=0) if reduce == "mean" else e[0] for e in self.embeddings[kind]]
        return np.stack(rows).astype(np.float32)

    def subset(self, class_ids: "Sequence[int] | np.ndarray") -> "ClassTexts":
        pos = {int(c): i for i, c in enumerate(self.class_ids)}
        missing = [c for c in class_ids if int(c) not in pos]
        if missing:
            raise ZsbenchError(f"no texts for classes {missing}")
        idx = [pos[int(c)] for c in class_ids]
        return ClassTexts(
            class_ids=np.asarray(class_ids, dtype=np.int64),
            class_names=[self.class_names[i] for i in idx],
            texts={k: [v[i] for i in idx] for k, v in self.texts.items()},
            embeddings={k: [v[i] for i in idx] for k, v in self.embeddings.items()},
        )


# --------------------------------------------------------------------------------------
# Method views
# --------------------------------------------------------------------------------------
InputKind = Literal["features", "sequences"]


class Sequences:
    """Some samples of a dataset's (N, C, T, V, M) array, read only when asked for.

    What end-to-end methods receive as ``x`` for ``kind == "sequences"``: the dataset's
    array (memory-mapped for prepared stores) plus the sample indices, so a fold of
    NTU-120 is never held in memory as a whole. It behaves like a read-only array for
    what training loops need: ``len``, ``shape``, ``dtype``, ``x[i]`` (one sample as an
    array), ``x[idx]`` for slices, index arrays and boolean masks (another ``Sequences``),
    and ``np.asarray(x[idx])`` / ``np.ascontiguousarray(x[idx], dtype=...)`` to load a
    batch. ``np.asarray(x)`` on a whole set loads all of it: do that per batch.
    """

    def __init__(self, data: Any, index: Any) -> None:
        self.data = data
        self.index = np.asarray(index, dtype=np.int64).reshape(-1)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.index),) + tuple(self.data.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.data.dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key: Any) -> "np.ndarray | Sequences":
        if isinstance(key, (int, np.integer)):
            return np.array(self.data[self.index[key]])
        return Sequences(self.data, self.index[key])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        order = np.argsort(self.index, kind="stable")   # read the store front to back
        out = np.empty(self.shape, dtype=self.data.dtype)
        if len(order):
            out[order] = self.data[self.index[order]]
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"Sequences({len(self)} samples of {tuple(self.data.shape)} {self.dtype})"


def concat_inputs(parts: Sequence[Any]) -> Any:
    """Stack the inputs of several sample sets: ``Sequences`` over one dataset stay lazy
    (indices joined), arrays are concatenated."""
    if all(isinstance(p, Sequences) for p in parts) and len({id(p.data) for p in parts}) == 1:
        return Sequences(parts[0].data, np.concatenate([p.index for p in parts]))
    return np.concatenate([np.asarray(p) for p in parts])


@dataclass
class TrainView:
    """What fit() receives: seen-class training samples and seen-class texts only.

    ``x`` is (N, D) features or (N, C, T, V, M) sequences (see ``kind``; for sequences
    usually a lazy ``Sequences`` view: load it batch by batch); ``labels`` are
    global class ids, all in ``texts.class_ids``. ``val_unseen`` names seen classes the
    method may hold out for validation (gamma / epoch selection); it is never test data.
    """

    x: np.ndarray
    labels: np.ndarray
    texts: ClassTexts
    kind: InputKind
    val_unseen: np.ndarray | None = None


@dataclass
class TestView:
    """What score() receives: test samples (no labels).

    One-shot protocols add ``support_x`` (labelled exemplars, same kind as ``x``, never
    scored) and ``support_labels`` (their global class ids); None elsewhere.
    """

    __test__ = False  # not a pytest test class, despite the name

    x: np.ndarray
    kind: InputKind
    support_x: np.ndarray | None = None
    support_labels: np.ndarray | None = None


@dataclass
class FoldInputs:
    """A fold's inputs as the core hands them to the decision rules.

    ``x`` maps each sample set (``train``, ``test_seen``, ``test_unseen`` and, for one-shot
    folds, ``support``) to features (N, D) or lazy ``Sequences``. ``labels`` is None when the
    samples are the fold's own (labels come from the dataset); pre-split feature files that
    bring their own sample sets give their labels per set here. ``encoder`` describes the
    encoder that produced the features (recorded), None for sequences.
    """

    x: dict[str, Any]
    labels: dict[str, np.ndarray] | None = None
    encoder: dict[str, Any] | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """What a method may know about the run's dataset (typed, the same for every plugin).

    ``family`` groups datasets that share the papers' per-dataset settings and reported
    numbers: ``ntu60``, ``ntu120``, ``pku_mmd`` for the real datasets, ``synthetic`` for the
    embedded benchmark, or what a third-party dataset declares (``DatasetSpec.family``).
    """

    name: str
    family: str
    num_classes: int
    class_names: tuple[str, ...] = ()
    real: bool = True

    @classmethod
    def of(cls, dataset: SkeletonDataset, family: str, real: bool = True) -> "DatasetInfo":
        return cls(name=dataset.name, family=family, num_classes=dataset.num_classes,
                   class_names=tuple(dataset.class_names), real=real)


EncoderFactory = Callable[..., Any]
"""``(name: str | None = None, **overrides) -> torch.nn.Module``: builds a registered
skeleton encoder with the run's encoder options (``overrides`` replace single fields)."""


@dataclass
class RunContext:
    """Services and facts the core hands a method during one fold.

    ``device`` is a resolved torch device string (``cpu``, ``cuda``); ``seed`` the fold's
    seed; ``cache_dir`` a folder the method may cache into; ``progress(iterable, desc=,
    total=)`` wraps long loops (bars on a terminal, periodic log lines otherwise);
    ``dataset`` describes the dataset (use ``dataset.family`` for per-dataset presets);
    ``protocol`` is the protocol's name. ``details`` (free-form, JSON-serialisable) is
    recorded with the fold; ``note_deviation`` records an official-behaviour option.
    ``test_selection`` is None except under ``model_selection=best_on_test`` (an official-
    repository behaviour): then calling it returns the ZSL top-1 accuracy (%) of the
    method's current state on the fold's unseen test samples (on the held-out validation
    classes during the GZSL gamma-validation fit), for methods that keep their best epoch
    (``zsbench.nn.selection.BestEpoch``).
    """

    device: str
    seed: int
    cache_dir: Path
    progress: Callable[..., Iterable[Any]]
    dataset: DatasetInfo = DatasetInfo(name="synthetic", family="synthetic", num_classes=0,
                                       real=False)
    protocol: str = ""
    fold_name: str = ""
    log: Callable[[str], None] = print
    encoder_factory: EncoderFactory | None = None
    deviations: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    test_selection: Callable[[], float] | None = None

    def build_encoder(self, name: str | None = None, **overrides: Any) -> Any:
        """Build a skeleton encoder module by registry name (for end-to-end methods);
        ``None`` = the run's encoder."""
        if self.encoder_factory is None:
            raise ZsbenchError("no skeleton encoder is available in this run context")
        return self.encoder_factory(name, **overrides)

    def note_deviation(self, name: str) -> None:
        """Record that an official-behaviour (non-clean) option is in force."""
        if name not in self.deviations:
            self.deviations.append(name)


class Method:
    """Base class for methods (optional: any object with fit/score works).

    ``config`` is the validated pydantic model of the method's spec.
    """

    def __init__(self, config: "BaseModel") -> None:
        self.config = config

    def fit(self, train: TrainView, ctx: RunContext) -> None:  # pragma: no cover - interface
        raise ZsbenchError(f"{type(self).__name__} does not implement fit()")

    def score(self, test: TestView, candidates: ClassTexts, ctx: RunContext) -> np.ndarray:
        raise ZsbenchError(f"{type(self).__name__} does not implement score()")  # pragma: no cover

    # Optional hooks -------------------------------------------------------------------
    def transductive_step(self, scores: np.ndarray, test: TestView, candidates: ClassTexts,
                          ctx: RunContext) -> np.ndarray | None:
        """Transductive test-time refinement (declared in the spec); None = not used."""
        return None

    def gzsl_decide(self, scores: np.ndarray, seen_mask: np.ndarray, test: TestView,
                    candidates: ClassTexts, ctx: RunContext) -> np.ndarray | None:
        """Method-specific GZSL gate returning predicted column indices, or None to let the
        core apply its calibrated stacking."""
        return None

    def embed(self, test: TestView, ctx: RunContext) -> Any:
        """Test features after the method's alignment, (N, D), for the feature diagnostics
        (run option ``diagnostics``); or ``{"before": (N, D0), "after": (N, D)}`` when the
        features before alignment are not ``test.x`` (end-to-end methods). None = not
        available (the default)."""
        return None

