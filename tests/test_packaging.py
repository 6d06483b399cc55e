"""pyproject.toml ships every package and declares every built-in plugin."""
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"

pytestmark = pytest.mark.skipif(not PYPROJECT.exists(), reason="needs the source tree")


def _pyproject():
    return tomllib.loads(PYPROJECT.read_text())


def test_every_package_is_listed():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    found = {"zsbench._splits"}
    for init in (ROOT / "harness").rglob("__init__.py"):
        found.add(".".join(init.parent.relative_to(ROOT / "harness").parts))
    for init in (ROOT / "plugins").rglob("__init__.py"):
        found.add(".".join(init.parent.relative_to(ROOT / "plugins").parts))
    assert listed == found


def test_every_builtin_plugin_has_an_entry_point():
    eps = _pyproject()["project"]["entry-points"]["zsbench"]
    modules = {f"{p.parent.name}.plugin" for p in (ROOT / "plugins").glob("*/plugin.py")}
    assert set(eps.values()) == modules


def test_split_files_are_importable_as_package_data():
    from zsbench.resources import splits_dir

    d = splits_dir()
    for name in ("synse.json", "smie.json", "sample_rules.json", "classes/ntu60.txt"):
        assert (d / name).exists(), name
