import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """One zsbench cache per test session (generated data and text embeddings are reused
    across tests, never written to the user's home)."""
    cache = tmp_path_factory.mktemp("zsbench-cache")
    old = os.environ.get("ZSBENCH_CACHE")
    os.environ["ZSBENCH_CACHE"] = str(cache)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ZSBENCH_PROGRESS", "0")
    yield cache
    if old is None:
        os.environ.pop("ZSBENCH_CACHE", None)
    else:
        os.environ["ZSBENCH_CACHE"] = old


@pytest.fixture(scope="session")
def zs_cache(_isolated_cache):
    return _isolated_cache


@pytest.fixture(scope="module")
def torch_single_thread():
    """Tiny tensors gain nothing from threads, and on a busy 2-core machine OpenMP
    oversubscription slows them down many times; restore the setting afterwards.
    Use with ``pytestmark = pytest.mark.usefixtures("torch_single_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
