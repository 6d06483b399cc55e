import json
import os

import pytest

from zsbench.api import ZsbenchError
from zsbench.report import check_against, to_csv, to_markdown
from zsbench.results import (FoldRecord, ResultRecord, check_writable, find_records,
                             write_atomic)


def make_record(run_id="r1", zsl=50.0):
    fold = FoldRecord(name="f0", dataset="synthetic", split_id="s", seen=[0, 1], unseen=[2],
                      metrics={"zsl_acc": zsl, "gzsl_acc_seen": 60.0, "gzsl_acc_unseen": 40.0,
                               "gzsl_h": 48.0},
                      n_train=10, n_test_unseen=5, n_test_seen=5, seconds=1.0,
                      gzsl_rule={"rule": "calibrated_stacking", "gamma": 0.5})
    return ResultRecord(run_id=run_id, created="now", zsbench_version="0", plugin="devise",
                        protocol="synse", datasets=["synthetic"], config={}, versions={},
                        device="cpu", seed=0, data_fingerprint="x", folds=[fold],
                        summary={"zsl_acc": zsl, "gzsl_acc_seen": 60.0, "gzsl_acc_unseen": 40.0,
                                 "gzsl_h": 48.0},
                        reported={"zsl_acc": 60.0}, deviations=["best_epoch_on_test"])


def test_write_atomic_leaves_no_temp_and_keeps_old_on_failure(tmp_path, monkeypatch):
    p = tmp_path / "a" / "result.json"
    write_atomic(p, "one")
    assert p.read_text() == "one"

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_atomic(p, "two")
    assert p.read_text() == "one"
    assert [x.name for x in p.parent.iterdir()] == ["result.json"]


def test_record_round_trip_and_reports(tmp_path):
    rec = make_record()
    write_atomic(tmp_path / "r1" / "result.json", rec.to_json())
    data = json.loads((tmp_path / "r1" / "result.json").read_text())
    assert data["schema"] == 1 and data["folds"][0]["metrics"]["gzsl_h"] == 48.0
    recs = find_records(tmp_path)
    md = to_markdown([r for _, r in recs])
    assert "| devise |" in md and "50.00" in md and "best_epoch_on_test" in md
    csv_text = to_csv([r for _, r in recs])
    assert csv_text.splitlines()[0].startswith("run_id,plugin,protocol")
    problems = check_against(recs, None, tolerance=1.0)
    assert len(problems) == 1 and "zsl_acc" in problems[0]
    assert check_against(recs, {"zsl_acc": 49.5}, tolerance=1.0) == []


def test_invalid_record_named(tmp_path):
    (tmp_path / "result.json").write_text("{}")
    with pytest.raises(ZsbenchError, match="not a valid zsbench result record"):
        find_records(tmp_path)


def test_unwritable_output(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ZsbenchError, match="not writable"):
        check_writable(f / "sub")


def test_report_shows_accuracy_before_a_transductive_step():
    rec = make_record()
    rec.transductive = True
    rec.folds[0].details["zsl_acc_before_transductive_step"] = 42.0
    md = to_markdown([rec])
    assert "zsl_acc_before_transductive_step" in md.splitlines()[0]
    assert "| 42.00 |" in md
