"""A throwaway third-party distribution declares a method under the `zsbench` entry-point
group; `zsbench list` shows it and `zsbench run` runs it end to end."""
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from zsbench.testing import tiny_overrides

DOC = Path(__file__).resolve().parents[1] / "docs" / "writing-a-plugin.md"


def doc_blocks(doc: str = DOC.read_text(encoding="utf-8")) -> dict[str, list[str]]:
    """Fenced code blocks of docs/writing-a-plugin.md, per section heading ("## 3. ...")."""
    out: dict[str, list[str]] = {}
    section = ""
    for m in re.finditer(r"^## ([^\n]*)$|^```(\w+)\n(.*?)^```", doc, flags=re.M | re.S):
        if m.group(1) is not None:
            section = m.group(1).split(".")[0]
        else:
            out.setdefault(section, []).append(m.group(3))
    return out


BLOCKS = doc_blocks()
PYPROJECT = BLOCKS["2"][0]   # the example plugin is the one the docs show, verbatim
PLUGIN = BLOCKS["3"][0]
METHOD = BLOCKS["4"][0]
DOC_TESTS = next(b for b in BLOCKS["5"] if "def test_" in b)


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory):
    src = tmp_path_factory.mktemp("ridge-src")
    (src / "pyproject.toml").write_text(PYPROJECT)
    pkg = src / "zsbench_ridge"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "plugin.py").write_text(textwrap.dedent(PLUGIN))
    (pkg / "method.py").write_text(textwrap.dedent(METHOD))
    target = tmp_path_factory.mktemp("ridge-site")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                           "--no-build-isolation", "--target", str(target), str(src)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    env = dict(os.environ)
    env["PYTHONPATH"] = str(target) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _zsbench(args, env):
    return subprocess.run([sys.executable, "-m", "zsbench", *args], capture_output=True,
                          text=True, env=env)


def test_external_method_is_listed(installed_plugin):
    out = _zsbench(["list", "methods"], installed_plugin)
    assert out.returncode == 0, out.stderr
    assert "ridge" in out.stdout and "devise" in out.stdout
    out = _zsbench(["plugins"], installed_plugin)
    assert "zsbench-ridge 0.0.1" in out.stdout


def test_external_method_runs(installed_plugin, tmp_path):
    sets = [a for s in tiny_overrides(method_epochs=None) for a in ("--set", s)]
    out = _zsbench(["run", "--plugin", "ridge", "--protocol", "synse", "--out", str(tmp_path),
                    "--run-id", "ext", "--device", "cpu", *sets], installed_plugin)
    assert out.returncode == 0, out.stderr[-3000:]
    rec = json.loads((tmp_path / "ext" / "result.json").read_text())
    assert rec["plugin"] == "ridge"
    assert rec["folds"] and rec["folds"][0]["metrics"]["zsl_acc"] is not None
    assert "plugin:ridge" in rec["versions"]


def test_docs_test_block_passes(installed_plugin, tmp_path):
    """The tests the docs suggest to a plugin author pass against the docs' plugin."""
    (tmp_path / "test_ridge_docs.py").write_text(DOC_TESTS)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(tmp_path / "test_ridge_docs.py")], capture_output=True, text=True,
                          env=installed_plugin, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "2 passed" in proc.stdout


def test_docs_plugin_uses_no_builtin_private_paths():
    """A third-party plugin reaches the core only through its public contract."""
    code = PLUGIN + METHOD + DOC_TESTS
    imported = set(re.findall(r"^\s*(?:from|import) ([\w.]+)", code, flags=re.M))
    allowed = {"zsbench", "zsbench.specs", "zsbench.api", "zsbench.testing", "numpy",
               "zsbench_ridge.method", "zsbench_ridge.plugin"}
    assert imported <= allowed, imported - allowed
    assert "zsbench_" not in code.replace("zsbench_ridge", "").replace("zsbench_methods", "")
