"""A restricted unpickler for label pickles and PYSKL/MMAction2 annotation files.

Plain data needs no imports in a pickle: dicts, lists, tuples, sets, str, bytes, ints,
floats, bools and None are built by opcodes alone. Everything that names a global goes
through ``find_class``, which here refuses every global except, when ``allow_numpy`` is
set, the handful numpy and protocol 2 need to rebuild arrays and scalars. Those are not
handed out as-is: each is replaced by a checking wrapper:

* ``numpy.ndarray`` resolves to an inert token (not callable), accepted only as the first
  argument of ``_reconstruct``, so a pickle cannot call the ndarray constructor;
* ``_reconstruct`` builds only plain ``np.ndarray`` objects (no subclasses);
* ``numpy.dtype`` refuses object and void (structured) dtypes;
* ``scalar`` / ``_frombuffer`` refuse dtypes that hold Python objects;
* ``_codecs.encode`` only turns a str into latin-1 bytes (how protocols 0-2 store bytes;
  allowed even without numpy, since bytes are plain data).

After loading, the whole object graph is walked and anything that is not plain data or a
numeric/string numpy array (or scalar) is refused. Errors are ``zsbench.api.DataFileError``
naming the file and the refused global.
"""
from __future__ import annotations

import importlib
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from zsbench.api import DataFileError


class Refused(pickle.UnpicklingError):
    """The pickle asks for something that is not plain data."""


class _NdarrayToken:
    """Stands for ``numpy.ndarray`` inside a pickle; deliberately not callable."""

    __slots__ = ()


_NDARRAY = _NdarrayToken()


def _numpy_attr(module: str, name: str) -> Any:
    if module.startswith("numpy.core") and int(np.__version__.split(".")[0]) >= 2:
        module = "numpy._core" + module[len("numpy.core"):]
    return getattr(importlib.import_module(module), name)


def _check_dtype(dt: Any) -> np.dtype:
    if not isinstance(dt, np.dtype):
        raise Refused(f"expected a numpy dtype, got {type(dt).__name__}")
    if dt.hasobject or dt.kind in "OV":
        raise Refused(f"numpy dtype {dt} holds Python objects or structured fields")
    return dt


def _safe_dtype(spec: Any, align: bool = False, copy: bool = False) -> np.dtype:
    if not isinstance(spec, str):
        raise Refused(f"numpy dtype from {type(spec).__name__} refused")
    dt = np.dtype(spec, align=bool(align), copy=bool(copy))
    if dt.kind in "OV":
        raise Refused(f"numpy dtype {spec!r} (object/structured) refused")
    return dt


def _safe_reconstruct(subtype: Any, shape: Any, typecode: Any) -> np.ndarray:
    if subtype is not _NDARRAY:
        raise Refused("array reconstruction with a type other than numpy.ndarray")
    if not isinstance(typecode, (bytes, str)):
        raise Refused("malformed numpy array reconstruction")
    real = _numpy_attr("numpy._core.multiarray" if hasattr(np, "_core") else
                       "numpy.core.multiarray", "_reconstruct")
    return real(np.ndarray, (0,), b"b")


def _safe_scalar(dtype: Any, data: Any = None) -> Any:
    _check_dtype(dtype)
    if not isinstance(data, bytes):
        raise Refused("numpy scalar without a byte buffer")
    real = _numpy_attr("numpy.core.multiarray", "scalar")
    return real(dtype, data)


def _safe_frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    _check_dtype(dtype)
    if not isinstance(buf, (bytes, bytearray, memoryview, pickle.PickleBuffer)):
        raise Refused("numpy buffer of an unexpected type")
    real = _numpy_attr("numpy.core.numeric", "_frombuffer")
    return np.array(real(buf, dtype, shape, order))


def _safe_encode(obj: Any, encoding: str = "utf-8") -> bytes:
    if not isinstance(obj, str) or encoding.lower().replace("-", "") != "latin1":
        raise Refused("_codecs.encode used for something other than bytes")
    return obj.encode("latin-1")


_NUMPY_GLOBALS = {
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _safe_dtype,
    ("numpy.core.multiarray", "_reconstruct"): _safe_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _safe_reconstruct,
    ("numpy.core.multiarray", "scalar"): _safe_scalar,
    ("numpy._core.multiarray", "scalar"): _safe_scalar,
    ("numpy.core.numeric", "_frombuffer"): _safe_frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _safe_frombuffer,
    ("_codecs", "encode"): _safe_encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """See the module docstring."""

    def __init__(self, file: Any, allow_numpy: bool = False) -> None:
        super().__init__(file)
        self.allow_numpy = allow_numpy

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("_codecs", "encode"):
            return _safe_encode        # how protocols 0-2 store bytes: plain data
        if self.allow_numpy and (module, name) in _NUMPY_GLOBALS:
            return _NUMPY_GLOBALS[(module, name)]
        allowed = "containers, str, bytes, numbers, bool, None" + (
            " and numpy arrays" if self.allow_numpy else "")
        raise Refused(
            f"it references {module}.{name}; only plain data ({allowed}) is accepted")

    def persistent_load(self, pid: Any) -> Any:
        raise Refused("persistent references are not accepted")


_PLAIN = (str, bytes, bytearray, int, float, complex, bool, type(None))


def check_plain(obj: Any, allow_numpy: bool) -> None:
    """Raise ``Refused`` unless ``obj`` is plain data (see module doc)."""
    stack, seen = [obj], set()
    while stack:
        o = stack.pop()
        if isinstance(o, _PLAIN):
            continue
        if id(o) in seen:
            continue
        seen.add(id(o))
        t = type(o)
        if t in (list, tuple, set, frozenset):
            stack.extend(o)
        elif t is dict:
            stack.extend(o.keys())
            stack.extend(o.values())
        elif allow_numpy and t is np.ndarray:
            _check_dtype(o.dtype)
        elif allow_numpy and isinstance(o, np.generic) and not isinstance(o, np.void):
            _check_dtype(o.dtype)
        else:
            raise Refused(f"unexpected object of type {t.__module__}.{t.__name__}")


def safe_loads(data: bytes, where: str = "pickle", allow_numpy: bool = False) -> Any:
    try:
        obj = RestrictedUnpickler(io.BytesIO(data), allow_numpy=allow_numpy).load()
        check_plain(obj, allow_numpy)
    except Refused as exc:
        raise DataFileError(f"{where}: refused to load this pickle: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, MemoryError, OverflowError, RecursionError,
            UnicodeDecodeError) as exc:
        raise DataFileError(f"{where}: not a readable pickle of plain data "
                            f"({type(exc).__name__}: {exc}); copy the file again (it is "
                            "truncated or damaged)") from None
    return obj


def safe_load(path: str | Path, allow_numpy: bool = False) -> Any:
    """Load a pickle file with the restricted unpickler (see the module docstring)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return safe_loads(data, where=str(path), allow_numpy=allow_numpy)
