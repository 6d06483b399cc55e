"""A throwaway third-party distribution declares a method under the `zsbench` entry-point
group; `zsbench list` shows it and `zsbench run` runs it end to end."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from zsbench.testing import tiny_overrides

PYPROJECT = """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "zsbench-ridge"
version = "0.0.1"

[project.entry-points.zsbench]
ridge = "zsbench_ridge.plugin"
"""

PLUGIN = '''
import zsbench
from zsbench.specs import MethodSpec, PluginConfig


class RidgeConfig(PluginConfig):
    alpha: float = 1.0


@zsbench.hookimpl
def zsbench_methods():
    return [MethodSpec(name="ridge", impl="zsbench_ridge.method:Ridge", config=RidgeConfig,
                       inputs="features", text_kinds=["name"], paper="test plugin")]
'''

METHOD = '''
import numpy as np
from zsbench.api import Method


class Ridge(Method):
    """Ridge regression from skeleton features to class text embeddings."""

    def fit(self, train, ctx):
        t = train.texts.matrix("name")
        pos = {int(c): i for i, c in enumerate(train.texts.class_ids)}
        y = t[[pos[int(c)] for c in train.labels]]
        x = np.asarray(train.x, dtype=np.float64)
        self.mu = x.mean(0)
        x = x - self.mu
        a = self.config.alpha
        self.w = np.linalg.solve(x.T @ x + a * np.eye(x.shape[1]), x.T @ y)

    def score(self, test, candidates, ctx):
        z = (np.asarray(test.x, dtype=np.float64) - self.mu) @ self.w
        t = candidates.matrix("name")
        z /= np.linalg.norm(z, axis=1, keepdims=True) + 1e-9
        t = t / (np.linalg.norm(t, axis=1, keepdims=True) + 1e-9)
        return z @ t.T
'''


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
