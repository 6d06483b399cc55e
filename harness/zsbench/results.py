"""The result record (the stable output other tools read) and atomic file writing."""
from __future__ import annotations

import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from pydantic import BaseModel, ConfigDict, Field

from .api import ZsbenchError

SCHEMA_VERSION = 1
METRICS = ("zsl_acc", "gzsl_acc_seen", "gzsl_acc_unseen", "gzsl_h")


class ClassCounts(BaseModel):
    """Per-class results of the ZSL setting (unseen classes, in ``classes`` order): sample
    counts per true class and, up to 100 classes, the confusion matrix (rows = true class,
    columns = predicted class). Written by the core's evaluation; optional in records."""

    model_config = ConfigDict(extra="forbid")

    classes: list[int]
    names: list[str] = Field(default_factory=list)
    correct: list[int]
    total: list[int]
    confusion: list[list[int]] | None = None


class FoldRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    dataset: str
    split_id: str
    sample_rule: str = ""
    group: str = ""
    seen: list[int]
    unseen: list[int]
    metrics: dict[str, float | None]
    n_train: int
    n_test_unseen: int
    n_test_seen: int
    seconds: float
    gzsl_rule: dict[str, Any] | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    encoder: dict[str, Any] | None = None
    class_counts: ClassCounts | None = None


class ResultRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: int = Field(default=SCHEMA_VERSION, alias="schema")
    run_id: str
    created: str
    zsbench_version: str
    plugin: str
    protocol: str
    datasets: list[str]
    config: dict[str, Any]
    versions: dict[str, str]
    device: str
    seed: int
    data_fingerprint: str
    folds: list[FoldRecord]
    summary: dict[str, float | None]
    group_summary: dict[str, dict[str, float | None]] = Field(
        default_factory=dict, description="means per fold group (e.g. split size) when a "
        "protocol mixes groups; 'summary' is then the mean over all folds")
    reported: dict[str, float | None] = Field(default_factory=dict)
    reported_source: str = ""
    reported_variant: str = Field("default", description="the row 'variant' of the method's "
                                  "reported numbers this configuration corresponds to")
    deviations: list[str] = Field(default_factory=list)
    transductive: bool = False
    text: dict[str, Any] = Field(default_factory=dict)
    paper: str = Field("", description="the method's citation (MethodSpec.paper)")
    status: str = "complete"

    def to_json(self) -> str:
        return json.dumps(clean_nans(self.model_dump(by_alias=True, mode="json")), indent=2)


def clean_nans(obj: Any) -> Any:
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {k: clean_nans(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [clean_nans(v) for v in obj]
    return obj


@contextmanager
def atomic_writer(path: Path, durable: bool = True) -> Iterator[BinaryIO]:
    """A binary file handle whose content replaces ``path`` only if the block completes:
    it writes a temp file in the same folder, fsyncs it (unless ``durable=False``, for
    files whose content is verified another way) and renames it over ``path``; on any
    error the temp file is removed and ``path`` keeps its old content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_atomic(path: Path, data: str | bytes) -> None:
    """Replace ``path`` with ``data`` atomically (see ``atomic_writer``)."""
    with atomic_writer(path) as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)


def write_new(path: Path, data: str | bytes) -> None:
    """Write ``path`` atomically, refusing to replace a file that exists (results are never
    overwritten, even by a concurrent writer)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)          # fails if path exists: no silent replacement
        except FileExistsError:
            raise ZsbenchError(f"{path} already exists; results are never overwritten "
                               "(choose another --run-id)") from None
        except OSError:                 # file systems without hard links
            if path.exists():
                raise ZsbenchError(f"{path} already exists; results are never overwritten "
                                   "(choose another --run-id)") from None
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def claim_run_folder(folder: Path) -> Iterator[None]:
    """Hold ``folder`` (a run's result folder) for the duration of a run: a second run with
    the same run id is refused while the first one runs, and after it finished."""
    folder = Path(folder)
    if (folder / "result.json").exists():
        raise ZsbenchError(f"{folder / 'result.json'} already exists; choose another --run-id "
                           "(results are never overwritten)")
    folder.mkdir(parents=True, exist_ok=True)
    lock_path = folder / ".run.lock"
    fh = open(lock_path, "a+")
    try:
        try:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - Windows: no lock, write_new still refuses
            pass
        except OSError:
            raise ZsbenchError(f"run id {folder.name!r} is in use by another zsbench run writing "
                               f"{folder}; choose another --run-id") from None
        if (folder / "result.json").exists():   # finished while we waited for the lock
            raise ZsbenchError(f"{folder / 'result.json'} already exists; choose another "
                               "--run-id (results are never overwritten)")
        yield
    finally:
        fh.close()
        try:
            lock_path.unlink()
        except OSError:
            pass


def check_writable(folder: Path) -> None:
    """Fail early, with a clear message, if results cannot be written to ``folder``."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".zsbench-write-test", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise ZsbenchError(f"output folder {folder} is not writable: {exc.strerror or exc}") from None


def load_record(path: Path) -> ResultRecord:
    try:
        return ResultRecord.model_validate_json(Path(path).read_text(encoding="utf-8"))
    except Exception as exc:
        raise ZsbenchError(f"{path}: not a valid zsbench result record: {exc}") from None


def find_records(folder: Path, problems: list[str] | None = None
                 ) -> list[tuple[Path, ResultRecord]]:
    """Every ``result.json`` under ``folder``. A record that cannot be read raises, unless
    ``problems`` is given: its message is then appended there and the others are returned."""
    folder = Path(folder)
    if not folder.exists():
        raise ZsbenchError(f"{folder} does not exist")
    paths = [folder] if folder.is_file() else sorted(folder.rglob("result.json"))
    out = []
    for p in paths:
        try:
            out.append((p, load_record(p)))
        except ZsbenchError as exc:
            if problems is None:
                raise
            problems.append(str(exc))
    return out
