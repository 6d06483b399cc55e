"""Plugin discovery: entry points, blocking, autoload switch, broken plugins, duplicates."""
import subprocess
import sys
import types

import pytest

import zsbench
from zsbench.api import ZsbenchError
from zsbench.plugins import load_plugins
from zsbench.specs import MethodSpec


def _plugin_module(name, method_name, raise_in_hook=False):
    mod = types.ModuleType(name)

    @zsbench.hookimpl
    def zsbench_methods():
        if raise_in_hook:
            raise RuntimeError("hook exploded")
        return [MethodSpec(name=method_name, impl="zsbench_devise.method:DeViSE")]

    mod.zsbench_methods = zsbench_methods
    return mod


def test_builtin_plugins_found_through_entry_points():
    ps = load_plugins()
    assert "devise" in ps.methods
    assert ps.plugins["devise"].distribution == "zsbench"


def test_blocking_and_autoload_switch(monkeypatch):
    assert "devise" not in load_plugins(blocked=["devise"]).methods
    assert load_plugins(blocked=["devise"]).plugins["devise"].status == "blocked"
    monkeypatch.setenv("ZSBENCH_DISABLED_PLUGINS", "devise")
    assert "devise" not in load_plugins().methods
    monkeypatch.delenv("ZSBENCH_DISABLED_PLUGINS")
    ps = load_plugins(autoload=False)
    assert len(ps.methods) == 0
    ps = load_plugins(autoload=False, requested=["devise"])
    assert ps.methods.names() == ["devise"]
    monkeypatch.setenv("ZSBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert len(load_plugins().methods) == 0


def test_requesting_unknown_plugin_is_an_error():
    with pytest.raises(ZsbenchError, match="nosuch"):
        load_plugins(autoload=False, requested=["nosuch"])


def test_broken_hook_reported_others_keep_working():
    ps = load_plugins(extra=[("bad", _plugin_module("bad", "x", raise_in_hook=True))])
    assert ps.plugins["bad"].status == "broken"
    assert "hook exploded" in ps.plugins["bad"].error
    assert "devise" in ps.methods


def test_duplicate_names_rejected_naming_both():
    with pytest.raises(ZsbenchError) as e:
        load_plugins(extra=[("copycat", _plugin_module("copycat", "devise"))])
    msg = str(e.value)
    assert "duplicate method name 'devise'" in msg
    assert "'copycat'" in msg and "'devise'" in msg and "zsbench" in msg


def test_unknown_name_suggests():
    ps = load_plugins()
    with pytest.raises(ZsbenchError, match="did you mean 'devise'"):
        ps.methods.get("devis")


def test_listing_does_not_import_torch():
    code = ("import sys; from zsbench.cli import main; "
            "[main(a) for a in (['list'], ['plugins'])]; "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "assert 'sentence_transformers' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")
    code2 = ("import sys\nfrom zsbench.cli import main\ntry:\n    main(['run', '--help'])\n"
             "except SystemExit:\n    pass\nassert 'torch' not in sys.modules\nprint('ok')")
    out = subprocess.run([sys.executable, "-c", code2], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
