"""End-to-end methods get lazy ``Sequences`` views of the (memory-mapped) dataset array,
never a fold materialised in memory."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from zsbench.api import Sequences, concat_inputs
from zsbench.runner import fold_inputs


@pytest.fixture
def store(tmp_path):
    data = np.lib.format.open_memmap(tmp_path / "data.npy", mode="w+", dtype=np.float32,
                                     shape=(20, 3, 4, 25, 2))
    data[:] = np.random.default_rng(0).normal(size=data.shape)
    data.flush()
    return np.load(tmp_path / "data.npy", mmap_mode="r")


def test_sequences_behave_like_the_indexed_array(store):
    idx = np.array([7, 2, 2, 15, 0])                     # unsorted, with a repeat
    x = Sequences(store, idx)
    want = np.asarray(store)[idx]
    assert len(x) == 5 and x.shape == (5, 3, 4, 25, 2) and x.dtype == np.float32 and x.ndim == 5
    assert np.array_equal(np.asarray(x), want)
    assert np.array_equal(x[3], want[3]) and isinstance(x[3], np.ndarray)
    sub = x[np.array([4, 0])]
    assert isinstance(sub, Sequences) and np.array_equal(np.asarray(sub), want[[4, 0]])
    assert np.array_equal(np.asarray(x[1:3]), want[1:3])
    mask = np.array([True, False, True, False, True])
    assert np.array_equal(np.asarray(x[mask]), want[mask])
    batch = np.ascontiguousarray(x[np.arange(2)], dtype=np.float64)
    assert batch.dtype == np.float64 and np.array_equal(batch, want[:2])
    assert np.asarray(Sequences(store, [])).shape == (0, 3, 4, 25, 2)


def test_concat_inputs_keeps_views_lazy(store):
    a, b = Sequences(store, [1, 2]), Sequences(store, [9])
    both = concat_inputs([a, b])
    assert isinstance(both, Sequences) and both.index.tolist() == [1, 2, 9]
    arrays = concat_inputs([np.ones((2, 3)), np.zeros((1, 3))])
    assert isinstance(arrays, np.ndarray) and arrays.shape == (3, 3)
    other = Sequences(np.asarray(store).copy(), [0])    # another array: loaded and joined
    mixed = concat_inputs([a, other])
    assert isinstance(mixed, np.ndarray) and np.array_equal(mixed[2], np.asarray(store)[0])


def test_fold_inputs_of_an_end_to_end_method_are_views_of_the_store(store):
    comp = SimpleNamespace(method=SimpleNamespace(inputs="sequences"))
    dataset = SimpleNamespace(data=store)
    fold = SimpleNamespace(train=np.array([0, 3, 5]), test_seen=np.array([6]),
                           test_unseen=np.array([8, 9]), support=None)
    fi = fold_inputs(comp, dataset, fold, ctx=None, factory=None)
    assert fi.encoder is None and fi.labels is None
    assert set(fi.x) == {"train", "test_seen", "test_unseen"}
    for name, part in fi.x.items():
        assert isinstance(part, Sequences) and part.data is store     # nothing loaded
        assert np.array_equal(np.asarray(part), np.asarray(store)[getattr(fold, name)])
