"""zsbench check (reported vs reproduced per matched row, exit status, the command behind
each reported number) and zsbench report (leaderboard in Markdown, CSV and a static HTML
page opened in headless Chromium)."""
from __future__ import annotations

import csv
import io
import json
import struct
import sys
from pathlib import Path

import pytest

from zsbench import cli
from zsbench.compare import leaderboard, plugin_rows, reproduce_command, variant_option
from zsbench.report import leaderboard_csv, leaderboard_markdown
from zsbench.results import ClassCounts, FoldRecord, ResultRecord, find_records

sys.path.insert(0, str(Path(__file__).parent))
import headless_chromium  # noqa: E402


def fold(name: str, seen: int, unseen: int, zsl: float, h: float | None = None,
         rule: str = "xsub", counts: bool = True) -> FoldRecord:
    cc = None
    if counts:
        correct = [max(0, 4 - i % 5) for i in range(unseen)]
        # diagonal = correct, one confusion with the next class
        conf = [[correct[i] if i == j else int(j == (i + 1) % unseen) for j in range(unseen)]
                for i in range(unseen)]
        cc = ClassCounts(classes=list(range(seen, seen + unseen)),
                         names=[f"action number {i}" for i in range(unseen)],
                         correct=correct, total=[sum(r) for r in conf], confusion=conf)
    metrics = {"zsl_acc": zsl, "gzsl_acc_seen": None if h is None else h + 5,
               "gzsl_acc_unseen": None if h is None else h - 4, "gzsl_h": h}
    return FoldRecord(name=name, dataset="ntu60", split_id=name, sample_rule=rule,
                      group=f"{seen}/{unseen}", seen=list(range(seen)),
                      unseen=list(range(seen, seen + unseen)), metrics=metrics, n_train=100,
                      n_test_unseen=20, n_test_seen=30, seconds=1.5,
                      gzsl_rule={"rule": "calibrated_stacking", "gamma": 0.3}, class_counts=cc)


def record(run_id: str, folds: list[FoldRecord], plugin: str = "devise", protocol: str = "synse",
           dataset: str = "ntu60", deviations=(), transductive=False, reported=None) -> ResultRecord:
    mean = {m: None for m in ("zsl_acc", "gzsl_acc_seen", "gzsl_acc_unseen", "gzsl_h")}
    for m in mean:
        vals = [f.metrics[m] for f in folds if f.metrics[m] is not None]
        mean[m] = sum(vals) / len(vals) if vals else None
    return ResultRecord(run_id=run_id, created=f"2026-12-01T00:00:0{len(run_id) % 10}+00:00",
                        zsbench_version="0.1.0", plugin=plugin, protocol=protocol,
                        datasets=[dataset], config={"plugin": plugin, "seed": 0},
                        versions={"torch": "2.14.1"}, device="cpu", seed=0,
                        data_fingerprint="abc123", folds=folds, summary=mean,
                        reported=reported or {}, deviations=list(deviations),
                        transductive=transductive)


def write(folder: Path, *recs: ResultRecord) -> Path:
    for rec in recs:
        (folder / rec.run_id).mkdir(parents=True)
        (folder / rec.run_id / "result.json").write_text(rec.to_json())
    return folder


# DeViSE as quoted by DVTA Table I (plugins/zsbench_devise/reported.csv): NTU-60 SynSE
# splits 55/5 -> 60.72, 48/12 -> 24.51
def devise_ntu60(tmp_path: Path, acc55: float, acc48: float) -> Path:
    return write(tmp_path, record("devise_ntu60", [fold("synse_ntu60_55_5", 55, 5, acc55),
                                                   fold("synse_ntu60_48_12", 48, 12, acc48)]))


def test_check_one_number_inside_one_outside(tmp_path, capsys):
    folder = devise_ntu60(tmp_path, acc55=60.22, acc48=20.01)
    assert cli.main(["check", str(folder)]) == 1
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith("devise_ntu60 ")]
    by_split = {r[2]: r for r in rows}
    # run, dataset, split, rule, metric, reported, reproduced, diff, status
    assert by_split["55/5"][4:9] == ["zsl_acc", "60.72", "60.22", "-0.50", "ok"]
    assert by_split["48/12"][4:9] == ["zsl_acc", "24.51", "20.01", "-4.50", "FAIL"]
    assert len(rows) == 2
    assert "2 comparison(s): 1 regression(s)" in out
    # every reported number of the plugin, under the command that reproduces it
    assert "zsbench run --plugin devise --protocol synse --dataset ntu60 --data-root DIR" in out
    assert "zsbench run --plugin devise --protocol smie --dataset pku_mmd --data-root DIR" in out
    assert "reproduced 60.22 (-0.50) by devise_ntu60" in out
    assert "not in these results" in out         # e.g. the NTU-120 numbers
    # the same folder within a wider tolerance passes; a number above the paper also counts
    assert cli.main(["check", str(folder), "--tolerance", "5"]) == 0
    capsys.readouterr()


def test_check_difference_above_the_paper_fails_unless_one_sided(tmp_path, capsys):
    folder = devise_ntu60(tmp_path, acc55=66.72, acc48=24.51)
    assert cli.main(["check", str(folder), "--no-commands"]) == 1
    out = capsys.readouterr().out
    assert "+6.00" in out and "FAIL" in out and "reported numbers of" not in out
    assert cli.main(["check", str(folder), "--one-sided"]) == 0
    capsys.readouterr()


def test_check_with_nothing_matched_fails(tmp_path, capsys):
    # the embedded benchmark has no reported numbers; NTU-60 with a split size no paper has
    write(tmp_path, record("synthetic_run", [fold("f", 35, 5, 43.3)], dataset="synthetic"),
          record("odd_split", [fold("g", 50, 10, 40.0)]))
    assert cli.main(["check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "nothing was compared" in out and "2 record(s)" in out


def test_golden_file_as_baseline_matches_per_split_group(tmp_path, capsys):
    folder = write(tmp_path / "runs", record("emb", [fold("a", 35, 5, 40.0), fold("b", 30, 10, 20.0)],
                                             dataset="synthetic"))
    golden = {"env": "devise-synse", "method": "devise", "protocol": "synse", "numbers": [
        {"dataset": "synthetic", "split": "35/5", "sample_rule": "xsub", "variant": "default",
         "metric": "zsl_acc", "value": 41.5},
        {"dataset": "synthetic", "split": "30/10", "sample_rule": "xsub", "variant": "default",
         "metric": "zsl_acc", "value": 20.0}]}
    (tmp_path / "g.json").write_text(json.dumps(golden))
    assert cli.main(["check", str(folder), "--baseline", str(tmp_path / "g.json"),
                     "--tolerance", "2"]) == 0
    assert cli.main(["check", str(folder), "--baseline", str(tmp_path / "g.json")]) == 1
    out = capsys.readouterr().out
    assert "-1.50" in out and "golden devise-synse" in out


def test_reproduce_commands_name_variant_options():
    from zsbench.plugins import load_plugins

    methods = load_plugins().methods
    row = {"method": "msf", "protocol": "synse", "dataset": "ntu60", "variant": "text_ad",
           "sample_rule": ""}
    cfg = methods.get("msf").config
    assert variant_option(cfg, "text_ad") == ("text_mode=ad", False)
    assert reproduce_command(row, cfg).endswith("--set method.text_mode=ad")
    # a variant that only a label field names: the command says what else to set
    dvta = methods.get("dvta").config
    cmd = reproduce_command({**row, "method": "dvta", "variant": "no_sde"}, dvta)
    assert "--set method.variant=no_sde" in cmd and "docs/methods/dvta.md" in cmd
    star = reproduce_command({"method": "neuron", "protocol": "star", "dataset": "ntu60",
                              "sample_rule": "xview", "variant": "default"})
    assert star == ("zsbench run --plugin neuron --protocol star --dataset ntu60 --data-root DIR "
                    "--set protocol.sample_rule=xview")
    cross = reproduce_command({"method": "pgfa", "protocol": "cross_dataset",
                               "dataset": "pku_mmd->ntu60", "variant": "default"})
    assert "--dataset pku_mmd " in cross


def leaderboard_records(tmp_path: Path) -> Path:
    return write(
        tmp_path,
        record("devise_clean", [fold("synse_ntu60_55_5", 55, 5, 60.0, h=50.0),
                                fold("synse_ntu60_48_12", 48, 12, 30.0, h=20.0)]),
        record("devise_official", [fold("synse_ntu60_55_5", 55, 5, 63.0)],
               deviations=["best_epoch_on_test"]),
        record("pgfa_smie", [fold(f"smie_ntu60_fold{i}", 55, 5, 90.0 + i, counts=i < 2) for i in range(3)],
               plugin="pgfa", protocol="smie", transductive=True))


def test_markdown_and_csv_carry_the_same_leaderboard(tmp_path):
    found = find_records(leaderboard_records(tmp_path))
    entries = leaderboard(list(found), plugin_rows())
    md = leaderboard_markdown(entries)
    rows = list(csv.DictReader(io.StringIO(leaderboard_csv(entries))))
    assert "### synse: ZSL acc" in md and "### smie: ZSL acc" in md and "### synse: GZSL H" in md
    assert "| devise | 60.00 / 60.72 (-0.72) | 30.00 / 24.51 (+5.49) |" in md
    assert "| devise † | 63.00 / 60.72 (+2.28) |" in md and "best_epoch_on_test" in md
    assert "pgfa ‡" in md
    # every reproduced/reported pair of the Markdown table is a CSV row
    for r in rows:
        if r["metric"] == "zsl_acc" and r["reported"]:
            assert f"{r['reproduced']} / {r['reported']} ({r['difference']})" in md
    smie = [r for r in rows if r["plugin"] == "pgfa"]
    assert len(smie) == 1 and smie[0]["reproduced"] == "91.00" and smie[0]["folds"] == "3"
    assert smie[0]["reported"] == "93.17" and smie[0]["transductive"] == "yes"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


PROBE = """({
  tables: document.querySelectorAll('table.leaderboard').length,
  cells: Array.from(document.querySelectorAll('table.leaderboard td.cell'))
           .filter(td => td.textContent.trim()).length,
  svgs: Array.from(document.querySelectorAll('figure svg')).map(s => {
          const r = s.getBoundingClientRect(); return [Math.round(r.width), Math.round(r.height),
          s.querySelectorAll('path, rect, use, image').length]; }),
  images: Array.from(document.querySelectorAll('svg image')).map(i =>
          (i.getAttribute('xlink:href') || i.getAttribute('href') || '').slice(0, 5)),
  runs: document.querySelectorAll('section.run').length,
  marks: document.querySelectorAll('.dev').length + '/' + document.querySelectorAll('.tr').length,
  width: document.documentElement.scrollWidth
})"""


def test_html_page_renders_offline_in_headless_chromium(tmp_path, capsys):
    binary = headless_chromium.find_chromium()
    if binary is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium; .ci/run installs "
                    "it where apt-get works): the HTML page was not opened in a browser")
    page = tmp_path / "leaderboard.html"
    folder = leaderboard_records(tmp_path / "runs")
    assert cli.main(["report", str(folder), "--format", "html", "--output", str(page)]) == 0
    text = page.read_text()
    assert "Content-Security-Policy" in text and "<script" not in text
    res = headless_chromium.open_page(page, PROBE, width=1280, binary=binary)
    # nothing but the page itself (and data: URIs inside it) was requested
    assert [u for u in res.requests if not u.startswith(("file:", "data:"))] == []
    assert res.requests[0] == page.resolve().as_uri() and res.violations == []
    v = res.value
    assert v["tables"] == 3 and v["cells"] == 6 and v["runs"] == 3 and v["marks"] == "1/1"
    # overview scatter + per run: bars, confusion, scatter (the pgfa run has counts in 2 folds)
    assert len(v["svgs"]) == 1 + 3 * 3
    for w, h, marks in v["svgs"]:
        assert w > 150 and h > 100 and marks > 5
    assert v["images"] and set(v["images"]) == {"data:"}    # confusion matrices, inline PNG
    w, h = _png_size(res.screenshot)
    assert w == 1280 and h > 2000 and len(res.screenshot) > 100_000


def test_request_detection_sees_an_external_load(tmp_path):
    """The browser harness is able to fail: a page that loads a remote image is caught."""
    binary = headless_chromium.find_chromium()
    if binary is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    page = tmp_path / "leaky.html"
    page.write_text('<html><body><img src="http://127.0.0.1:9/pixel.png"><p>x</p></body></html>')
    res = headless_chromium.open_page(page, "document.querySelectorAll('p').length",
                                      screenshot=False, binary=binary)
    assert "http://127.0.0.1:9/pixel.png" in res.requests and res.value == 1
