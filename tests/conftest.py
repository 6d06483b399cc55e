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
