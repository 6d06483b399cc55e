"""The typed core-plugin boundary: declared needs, typed context, isolated observers,
plugin errors named as the plugin's, runs that never replace each other's records, and
report/check that survive a corrupt record."""
import io
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import zsbench
from zsbench import cli
from zsbench.api import DatasetInfo, Method, RunContext, ZsbenchError
from zsbench.config import build_run_config
from zsbench.plugins import load_plugins
from zsbench.progress import log_lines
from zsbench.results import claim_run_folder, write_new
from zsbench.runner import run
from zsbench.setup import method_needs, resolve
from zsbench.specs import MethodConfig, MethodNeeds, MethodSpec, PluginConfig
from zsbench.testing import context, tiny_overrides, tiny_problem


# ---- a method written as a third party would, registered in-process ----------------------
class ProbeConfig(MethodConfig):
    # fields named like the ones the core used to read by convention: they must not matter
    encoder: str = "no_such_encoder"
    context_kind: str = "no_such_kind"
    text_kind: str = "name"

    def needs(self) -> MethodNeeds:
        return MethodNeeds(text_kinds=[self.text_kind])


SEEN: dict = {}


class Probe(Method):
    def fit(self, train, ctx):
        SEEN["ctx"] = ctx
        SEEN["config_type"] = type(self.config)
        t = train.texts.matrix(self.config.text_kind)
        pos = {int(c): i for i, c in enumerate(train.texts.class_ids)}
        y = t[[pos[int(c)] for c in train.labels]]
        x = np.asarray(train.x, dtype=np.float64)
        self.w = np.linalg.lstsq(x, y, rcond=None)[0]

    def score(self, test, candidates, ctx):
        return np.asarray(test.x, dtype=np.float64) @ self.w @ candidates.matrix(self.config.text_kind).T


class ProbePlugin:
    @zsbench.hookimpl
    def zsbench_methods(self):
        return [MethodSpec(name="probe", impl=f"{__name__}:Probe", config=ProbeConfig,
                           paper="A. Probe, 2026")]


class BrokenObserver:
    calls = 0

    @zsbench.hookimpl
    def zsbench_fold_end(self, record, fold):
        BrokenObserver.calls += 1
        raise RuntimeError("logger backend is down")


class FaultyMethod(Method):
    def fit(self, train, ctx):
        raise KeyError("a bug in the plugin")


def _cfg(tmp_path, cache, plugin="probe", run_id="r", extra=()):
    return build_run_config({"plugin": plugin, "protocol": "synse", "out": str(tmp_path / "out"),
                             "cache_dir": str(cache), "device": "cpu", "run_id": run_id},
                            [s for s in tiny_overrides(method_epochs=None)] + list(extra))


def test_needs_decide_text_kinds_and_encoder_not_field_names():
    plugins = load_plugins(extra=[("probe", ProbePlugin())])
    cfg = build_run_config({"plugin": "probe", "protocol": "synse"}, [])
    comp = resolve(plugins, cfg)
    assert comp.text_kinds == ["name"]                      # not "no_such_kind"
    assert comp.encoder is not None and comp.encoder.name == "stgcn"   # not "no_such_encoder"
    spec = plugins.methods.get("probe")
    assert method_needs(spec, ProbeConfig(text_kind="description")).text_kinds == ["description"]
    assert method_needs(spec, PluginConfig()).text_kinds == ["name"]   # spec's declaration


def test_dataset_run_defaults_per_encoder_under_the_users_values():
    plugins = load_plugins()
    for enc in ("shiftgcn", "stgcn"):
        comp = resolve(plugins, build_run_config(
            {"plugin": "devise", "protocol": "synse", "encoder": enc}, []))
        widths = getattr(comp.encoder_cfg, "widths", None)
        if enc == "shiftgcn":   # the embedded benchmark's CPU-sized Shift-GCN
            assert widths == [16, 16, 16, 16, 32, 32, 32, 64, 64]
        else:                   # an encoder:shiftgcn suggestion never reaches ST-GCN
            assert widths is None and comp.encoder_cfg.hidden_channels == 16
    comp = resolve(plugins, build_run_config(
        {"plugin": "devise", "protocol": "synse", "encoder": "shiftgcn"},
        ["encoder.widths=[8,8,8,8,8,8,8,8,8]"]))
    assert comp.encoder_cfg.widths == [8] * 9           # the user's value wins


def test_context_is_typed_and_observer_failure_is_isolated(tmp_path, zs_cache):
    BrokenObserver.calls = 0
    plugins = load_plugins(extra=[("probe", ProbePlugin()), ("badlog", BrokenObserver())])
    lines = []
    rec, path = run(_cfg(tmp_path, zs_cache), plugins, log=lines.append)
    ctx = SEEN["ctx"]
    assert isinstance(ctx, RunContext) and not hasattr(ctx, "extras")
    assert ctx.dataset == DatasetInfo(name="synthetic", family="synthetic",
                                      num_classes=12, class_names=ctx.dataset.class_names,
                                      real=False)
    assert len(ctx.dataset.class_names) == 12 and ctx.protocol == "synse"
    assert SEEN["config_type"] is ProbeConfig             # a validated instance, not a dict
    assert path.exists() and rec.folds                   # the run wrote its record
    assert BrokenObserver.calls == 1                     # called once, then ignored
    assert plugins.plugins["badlog"].status == "broken"
    assert any("badlog" in m and "logger backend is down" in m for m in lines)
    assert rec.paper == "A. Probe, 2026"
    assert json.loads(path.read_text())["paper"] == "A. Probe, 2026"
    seconds = rec.folds[0].details["seconds"]           # where the fold's time went
    assert set(seconds) == {"inputs", "fit", "zsl", "gzsl"}
    assert all(v >= 0 for v in seconds.values())
    assert any(line.endswith(" s") and " time: inputs " in line for line in lines)


def test_plugin_exception_is_reported_as_the_plugins(monkeypatch):
    # the innermost frame is FaultyMethod.fit in this module: map the module to a plugin
    monkeypatch.setattr(cli, "_plugin_packages", lambda: {"test_boundary": "faulty"})
    with pytest.raises(KeyError) as info:
        FaultyMethod(ProbeConfig()).fit(None, None)
    msg = cli.describe_unexpected(info.value)
    assert msg.startswith("error in plugin 'faulty' at ") and "test_boundary.py:" in msg
    assert "KeyError" in msg and "a bug in the plugin" in msg


def test_plugin_packages_map_builtin_plugins():
    owners = cli._plugin_packages()
    assert owners["zsbench_devise"] == "devise" and "zsbench" not in owners


def test_unexpected_core_exception_is_internal_error():
    try:
        {}["x"]
    except KeyError as exc:
        assert cli.describe_unexpected(exc).startswith("internal error at ")


def test_resolved_config_records_preset_values():
    from zsbench_dvta.config import DVTAConfig
    from zsbench_pgfa.config import PGFAConfig

    ntu120 = DatasetInfo(name="ntu120", family="ntu120", num_classes=120)
    assert DVTAConfig().lr is None
    assert DVTAConfig().resolved(ntu120).lr == 5e-6
    assert DVTAConfig(lr=1e-3).resolved(ntu120).lr == 1e-3
    p = PGFAConfig().resolved(ntu120)
    assert (p.lr, p.alpha) == (0.005, 0.4)


def test_same_run_id_is_refused_while_running_and_after(tmp_path):
    folder = tmp_path / "out" / "same"
    with claim_run_folder(folder):
        with pytest.raises(ZsbenchError, match="in use by another zsbench run"):
            with claim_run_folder(folder):
                pass
        write_new(folder / "result.json", "{}")
    with pytest.raises(ZsbenchError, match="already exists"):
        with claim_run_folder(folder):
            pass
    with pytest.raises(ZsbenchError, match="never overwritten"):
        write_new(folder / "result.json", "other")
    assert (folder / "result.json").read_text() == "{}"   # the first record is intact


def _write_record(folder: Path, run_id: str, reported: dict, summary: dict) -> None:
    rec = {"schema": 1, "run_id": run_id, "created": "2026-01-01T00:00:00+00:00",
           "zsbench_version": "0", "plugin": "devise", "protocol": "synse",
           "datasets": ["synthetic"], "config": {}, "versions": {}, "device": "cpu", "seed": 0,
           "data_fingerprint": "x", "folds": [], "summary": summary, "reported": reported}
    (folder / run_id).mkdir(parents=True)
    (folder / run_id / "result.json").write_text(json.dumps(rec))


def test_report_and_check_survive_a_corrupt_record(tmp_path, capsys):
    _write_record(tmp_path, "good", {"zsl_acc": 50.0}, {"zsl_acc": 50.5})
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "result.json").write_text("{not json")
    assert cli.main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "good" in out.out and "bad" in out.err and "skipped" in out.err
    assert cli.main(["check", str(tmp_path)]) == 1      # an unreadable record fails the gate
    out = capsys.readouterr()
    assert "1 comparison(s): 0 regression(s)" in out.out and "1 unreadable" in out.out


def test_check_with_nothing_to_compare_fails(tmp_path, capsys):
    _write_record(tmp_path, "noref", {}, {"zsl_acc": 50.0})
    assert cli.main(["check", str(tmp_path)]) == 1
    assert "nothing was compared" in capsys.readouterr().out


def test_progress_without_terminal_writes_periodic_lines():
    buf = io.StringIO()

    def slow():
        for i in range(4):
            time.sleep(0.02)
            yield i

    assert list(log_lines(slow(), desc="epochs", total=4, interval=0.03, stream=buf)) == [0, 1, 2, 3]
    lines = buf.getvalue().splitlines()
    assert len(lines) >= 2 and lines[-1].startswith("epochs: 4/4 (100%)") and "done" in lines[-1]
    assert any("left" in line for line in lines[:-1])


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for name in ("run", "list", "plugins", "report", "check", "check-plugin", "data"):
        assert name in out.split("positional arguments")[0]


def test_testing_context_defaults():
    ctx = context()
    assert ctx.dataset.family == "synthetic" and ctx.protocol == "synse"
    with pytest.raises(ZsbenchError, match="no skeleton encoder"):
        ctx.build_encoder("stgcn")
    train, test, cands, y = tiny_problem()
    m = Probe(ProbeConfig())
    m.fit(train, ctx)
    assert m.score(test, cands, ctx).shape == (len(y), len(cands))


def test_batch_mean_accuracy_is_a_labelled_option(tmp_path, zs_cache):
    plugins = load_plugins(extra=[("probe", ProbePlugin())])
    clean, _ = run(_cfg(tmp_path, zs_cache, run_id="clean", extra=["settings=[zsl]"]), plugins,
                   log=lambda m: None)
    official, _ = run(_cfg(tmp_path, zs_cache, run_id="official",
                           extra=["settings=[zsl]", "accuracy=batch_mean",
                                  "accuracy_batch_size=7"]), plugins, log=lambda m: None)
    f0, f1 = clean.folds[0], official.folds[0]
    assert clean.deviations == [] and official.deviations == ["batch_averaged_accuracy"]
    assert f0.metrics["zsl_acc"] == f0.details["zsl_acc_per_sample"]
    assert f1.metrics["zsl_acc"] == f1.details["zsl_acc_batch_mean"]
    assert f1.details["accuracy_batch_size"] == 7 and f0.details["accuracy_batch_size"] == 64
    assert f1.details["zsl_acc_per_sample"] == f0.details["zsl_acc_per_sample"]


def test_best_epoch_on_test_is_a_labelled_option_of_methods_that_offer_it(tmp_path, zs_cache):
    plugins = load_plugins()
    extra = ["method.epochs=4", "method.warmup_epochs=1"]
    rec, _ = run(_cfg(tmp_path, zs_cache, plugin="dvta", run_id="best",
                      extra=[*extra, "model_selection=best_on_test"]), plugins, log=lambda m: None)
    clean, _ = run(_cfg(tmp_path, zs_cache, plugin="dvta", run_id="clean", extra=extra),
                   plugins, log=lambda m: None)
    fold = rec.folds[0]
    sel = fold.details["selected_on_test"]
    curve = [acc for _, acc in sel["curve"]]
    assert [e for e, _ in sel["curve"]] == [0, 1, 2, 3]          # scored after every epoch
    assert sel["zsl_acc"] == max(curve) and sel["epoch"] == curve.index(max(curve))
    # the kept epoch is the one scored: the fold's ZSL accuracy is its test accuracy
    assert fold.metrics["zsl_acc"] == pytest.approx(sel["zsl_acc"])
    assert rec.deviations == ["model_selection_on_test"] and clean.deviations == []
    assert "selected_on_test" not in clean.folds[0].details
    # the last epoch of the clean run is the selection run's last curve point
    assert clean.folds[0].metrics["zsl_acc"] == pytest.approx(curve[-1])
    with pytest.raises(ZsbenchError, match="does not select its epoch on the test set"):
        run(_cfg(tmp_path, zs_cache, plugin="devise", run_id="refused",
                 extra=["model_selection=best_on_test"]), plugins, log=lambda m: None)
