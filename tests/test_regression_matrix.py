"""The regression matrix: generated from the registry into tox.ini, listed by ``tox -l``;
one environment run in-process on the tiny embedded benchmark (the CI subset of the
matrix) against golden numbers recorded deliberately; the real-data mode's wiring."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from zsbench import regression
from zsbench.regression import Pair, Settings, matrix, tox_section
from zsbench.results import find_records
from zsbench.specs import MethodSpec
from zsbench.testing import TINY

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("torch_single_thread")


def test_committed_tox_matrix_is_the_registry_s():
    text = (ROOT / "tox.ini").read_text()
    assert regression.current_section(text) == tox_section(matrix()), (
        "tox.ini's regression matrix differs from the plugin registry: regenerate it with "
        "`python -m zsbench.regression tox --write`")


def test_matrix_pairs_come_from_reported_numbers_and_a_new_plugin_gets_an_environment():
    pairs = {p.env: p for p in matrix()}
    assert {"pgfa-smie", "msf-synse", "devise-synse", "pgfa-cross_dataset"} <= set(pairs)
    assert "msf-smie" not in pairs            # MSF reports SynSE splits only
    assert pairs["pgfa-cross_dataset"].datasets == ("ntu60", "pku_mmd")
    # a built-in method without reported numbers gets the default protocol; an installed
    # third-party one only on request
    reg = SimpleNamespace(
        methods=[MethodSpec(name="newbie", impl="x:Y", distribution="zsbench"),
                 MethodSpec(name="thirdparty", impl="x:Y", distribution="zsbench-extra")],
        protocols=SimpleNamespace(names=lambda: ["smie", "synse"]))
    assert [p.env for p in matrix(reg)] == ["newbie-synse"]
    assert [p.env for p in matrix(reg, include_installed=True)] == ["newbie-synse", "thirdparty-synse"]
    section = tox_section(matrix(reg))
    assert "[testenv:newbie-synse]" in section and "    newbie-synse\n" in section
    assert "-e regression -- run newbie synse {posargs}" in section


def test_tox_lists_the_matrix():
    out = subprocess.run([sys.executable, "-m", "tox", "-l", "-c", str(ROOT)], capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    listed = out.stdout.split()
    assert {p.env for p in matrix()} <= set(listed) and "py3" in listed


def test_write_replaces_only_the_generated_section(tmp_path):
    ini = tmp_path / "tox.ini"
    ini.write_text("[tox]\nenv_list = py3\n\n" + regression.BEGIN + "\nSTALE LINE\n" + regression.END
                   + "\n[testenv:after]\ncommands = x\n")
    assert regression.main(["tox", "--check", str(ini)]) == 1
    assert regression.main(["tox", "--write", str(ini)]) == 0
    text = ini.read_text()
    assert text.startswith("[tox]\nenv_list = py3\n\n") and "STALE LINE" not in text
    assert text.endswith(regression.END + "\n\n[testenv:after]\ncommands = x\n")
    assert regression.main(["tox", "--check", str(ini)]) == 0


TINY_SETS = [*TINY, "method.epochs=2"]


def test_one_environment_on_the_tiny_benchmark(tmp_path, capsys, monkeypatch):
    """The CI subset of the matrix: devise-synse on the tiny embedded benchmark. Golden
    numbers are written only by `record`; `run` checks against them, fails when they
    differ beyond the tolerance, when they were made with other options, or are missing."""
    monkeypatch.delenv(regression.ENV_DATA, raising=False)
    monkeypatch.delenv(regression.ENV_CONFIG, raising=False)
    monkeypatch.chdir(tmp_path)       # no ./regression.toml
    golden, out, sets = tmp_path / "golden", tmp_path / "out", TINY_SETS
    args = ["devise", "synse", "--golden-dir", str(golden), "--out", str(out)]
    setargs = [a for s in sets for a in ("--set", s)]
    assert regression.main(["run", *args, *setargs]) == 1       # nothing recorded yet
    assert "record them deliberately" in capsys.readouterr().out and not golden.exists()

    assert regression.main(["record", *args, *setargs]) == 0
    path = golden / "devise-synse.json"
    data = json.loads(path.read_text())
    assert data["sets"] == sets and data["produced_by"]["command"].startswith(
        "python -m zsbench.regression record devise-synse --set")
    assert data["produced_by"]["run_id"] and data["produced_by"]["git_commit"]
    numbers = {r["metric"]: r for r in data["numbers"]}
    assert set(numbers) == {"zsl_acc", "gzsl_acc_seen", "gzsl_acc_unseen", "gzsl_h"}
    # one line per number: a changed number is one line of the diff
    assert sum('"metric": ' in line for line in path.read_text().splitlines()) == 4
    before = path.read_text()

    capsys.readouterr()
    assert regression.main(["run", *args, *setargs]) == 0
    printed = capsys.readouterr().out
    assert "$ zsbench check" in printed and "0 regression(s)" in printed
    assert path.read_text() == before                           # never a side effect
    (_, rec), = find_records(out / "devise-synse")
    fold = rec.folds[0]
    cc = fold.class_counts                                      # per-class counts recorded
    assert cc is not None and sum(cc.total) == fold.n_test_unseen
    assert cc.classes == fold.unseen and len(cc.names) == len(cc.classes)
    assert 100.0 * sum(cc.correct) / sum(cc.total) == pytest.approx(fold.metrics["zsl_acc"])
    assert [row[i] for i, row in enumerate(cc.confusion)] == cc.correct

    data["numbers"] = [{**r, "value": r["value"] + 5.0} if r["metric"] == "zsl_acc" else r
                       for r in data["numbers"]]
    path.write_text(json.dumps(data))
    assert regression.main(["run", *args, *setargs]) == 1
    assert "FAIL" in capsys.readouterr().out
    assert regression.main(["run", *args]) == 1                 # options differ from the golden's
    assert "were made with --set" in capsys.readouterr().out


def test_real_data_mode_runs_each_reported_dataset_then_checks(tmp_path, monkeypatch, capsys):
    calls: list[list[str]] = []
    monkeypatch.setattr(regression, "_cli", lambda argv: calls.append(argv) or 0)
    cfg = tmp_path / "regression.toml"
    cfg.write_text('data_root = "/data/zs"\ndatasets = ["ntu60", "pku_mmd"]\ndevice = "cuda"\n'
                   '[env.pgfa-smie]\nargs = ["--set", "text.pgfa_complete.path=/t/des.json"]\n')
    monkeypatch.setenv(regression.ENV_CONFIG, str(cfg))
    monkeypatch.delenv(regression.ENV_DATA, raising=False)
    assert regression.main(["run", "pgfa", "smie", "--out", str(tmp_path / "o")]) == 0
    runs = [c for c in calls if c[0] == "run"]
    checks = [c for c in calls if c[0] == "check"]
    assert [c[c.index("--dataset") + 1] for c in runs] == ["ntu60", "pku_mmd"]    # not ntu120
    assert all("--data-root" in c and "/data/zs" in c and "cuda" in c for c in runs)
    assert all("text.pgfa_complete.path=/t/des.json" in c for c in runs)
    assert len(checks) == 2 and all(c[c.index("--tolerance") + 1] == "1.0" for c in checks)
    assert "--baseline" not in checks[0]                  # the paper's numbers, not golden
    assert "real data: /data/zs" in capsys.readouterr().out
    # $ZSBENCH_REGRESSION_DATA alone selects real data too
    monkeypatch.delenv(regression.ENV_CONFIG)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    monkeypatch.setenv(regression.ENV_DATA, "/elsewhere")
    assert regression.load_settings().data_root == "/elsewhere"


def test_bad_regression_config_is_named(tmp_path):
    from zsbench.api import ZsbenchError

    cfg = tmp_path / "r.toml"
    cfg.write_text('data_rot = "/x"\n')
    with pytest.raises(ZsbenchError, match="unknown key"):
        regression.load_settings(cfg)
    assert Settings().real is False and Pair("a", "b").env == "a-b"


def test_golden_table_shows_each_split_with_chance_and_lists_missing_environments(tmp_path):
    from zsbench.golden import golden_table

    numbers = [{"dataset": "synthetic", "split": "35/5", "sample_rule": "xsub",
                "variant": "default", "metric": m, "value": v}
               for m, v in [("zsl_acc", 40.0), ("gzsl_acc_seen", 48.41),
                            ("gzsl_acc_unseen", 40.0), ("gzsl_h", 43.8129)]]
    numbers += [{"dataset": "synthetic", "split": "32/8", "sample_rule": "xsub",
                 "variant": "default", "metric": "zsl_acc", "value": 61.111},
                {"dataset": "synthetic xview:A->B", "split": "35/5", "sample_rule": "xview",
                 "variant": "default", "metric": "zsl_acc", "value": 76.3476}]
    (tmp_path / "a-synse.json").write_text(json.dumps({
        "env": "a-synse", "numbers": numbers,
        "produced_by": {"seconds": 50.8, "created": "2026-12-07T03:11:11+00:00"}}))
    table = golden_table(["a-synse", "b-smie"], tmp_path)
    lines = table.splitlines()
    assert lines[2] == ("| `a-synse` | 35/5 xsub | 40.00 | 20.0 | 48.41 / 40.00 / 43.81 "
                        "| 51 | 2026-12-07 |")
    assert lines[3] == "| `a-synse` | 32/8 xsub | 61.11 | 12.5 | - | 51 | 2026-12-07 |"
    assert lines[4].startswith("| `a-synse` | synthetic xview:A->B, 35/5 xview | 76.35 | 20.0 |")
    assert "No golden numbers yet: `b-smie`" in table
