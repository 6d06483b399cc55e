"""zsbench.module_cache: a method's trained module, cached between runs."""
from __future__ import annotations

import numpy as np
import torch

from zsbench.module_cache import ModuleCache, data_digest, module_identity

CLASSES = np.array([3, 1, 2])


def _net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))


def test_round_trip_and_misses(tmp_path):
    key = {"encoder": "tiny", "seed": 0}
    trained = _net(0)
    trained[1].running_mean.fill_(0.5)
    ModuleCache(tmp_path, "m/encoders", key).save(trained, CLASSES, {"final": 1.5})
    fresh = _net(1)
    assert ModuleCache(tmp_path, "m/encoders", key).load(fresh, CLASSES[::-1]) == {"final": 1.5}
    for a, b in zip(fresh.state_dict().values(), trained.state_dict().values()):
        assert torch.equal(a, b)                                      # buffers included
    assert ModuleCache(tmp_path, "m/encoders", {**key, "seed": 1}).load(_net(1), CLASSES) is None
    assert ModuleCache(tmp_path, "m/encoders", key).load(_net(1), CLASSES[:2]) is None
    assert ModuleCache(tmp_path, "other", key).load(_net(1), CLASSES) is None
    assert ModuleCache(None, "m/encoders", key).load(_net(1), CLASSES) is None
    ModuleCache(None, "m/encoders", key).save(trained, CLASSES, {})   # disabled: no-op
    # an entry without generator states cannot serve a caller that needs them
    assert ModuleCache(tmp_path, "m/encoders", key).load(
        _net(1), CLASSES, {"g": torch.Generator()}) is None


def test_damaged_entry_is_ignored_and_module_left_alone(tmp_path):
    cache = ModuleCache(tmp_path, "m", {"k": 1})
    cache.save(_net(0), CLASSES, {})
    assert cache.folder is not None
    raw = (cache.folder / "weights.pt").read_bytes()
    (cache.folder / "weights.pt").write_bytes(raw[:-10])
    target = _net(1)
    before = [t.clone() for t in target.state_dict().values()]
    assert cache.load(target, CLASSES) is None
    assert all(torch.equal(a, b) for a, b in zip(before, target.state_dict().values()))
    cache.save(_net(0), CLASSES, {})                                   # rewritten
    assert cache.load(target, CLASSES) == {}


def test_generator_states_restored(tmp_path):
    gen = torch.Generator().manual_seed(5)
    torch.manual_seed(7)
    torch.rand(3)
    torch.rand(2, generator=gen)
    cache = ModuleCache(tmp_path, "m", {"k": 2})
    cache.save(_net(0), CLASSES, {}, {"g": gen})
    expected = (torch.rand(4), torch.rand(4, generator=gen))
    other = torch.Generator().manual_seed(99)
    torch.manual_seed(99)
    assert cache.load(_net(1), CLASSES, {"g": other}) == {}
    assert torch.equal(torch.rand(4), expected[0])
    assert torch.equal(torch.rand(4, generator=other), expected[1])


def test_key_helpers():
    x = np.arange(60, dtype=np.float32).reshape(5, 3, 4)
    labels = np.array([0, 1, 0, 1, 2])
    assert data_digest(x, labels) == data_digest(x.copy(), labels.copy())
    assert data_digest(x, labels) != data_digest(x, labels[::-1])
    y = x.copy()
    y[2, 0, 0] += 1
    assert data_digest(x, labels) != data_digest(y, labels)
    assert module_identity(_net(0)).startswith("torch.nn.modules.container.Sequential:")


def test_entries_of_another_code_revision_miss(tmp_path, monkeypatch):
    """The key carries zsbench.module_cache.REVISION: an entry written under another
    revision (older code that trained differently for the same config) is not loaded."""
    import zsbench.module_cache as mc

    key = {"encoder": "tiny", "seed": 0}
    monkeypatch.setattr(mc, "REVISION", mc.REVISION - 1)
    old = ModuleCache(tmp_path, "m/encoders", key)
    old.save(_net(0), CLASSES, {"from": "older code"})
    monkeypatch.setattr(mc, "REVISION", mc.REVISION + 1)
    now = ModuleCache(tmp_path, "m/encoders", key)
    assert now.folder != old.folder
    assert now.load(_net(1), CLASSES) is None
    assert '"zsbench_cache_revision"' in now.key
