"""``zsbench report DIR --format html``: one self-contained static page.

Per protocol, the leaderboard (methods x dataset/split groups, reproduced next to reported,
the difference coloured, official-behaviour options and transductive methods marked); per
run its folds, per-class accuracy bars, the unseen-class confusion matrix, a
reported-vs-reproduced scatter and the run's metadata. Plots are drawn with matplotlib and
inlined as SVG; the page loads nothing (a Content-Security-Policy forbids any request) and
needs no script.
"""
from __future__ import annotations

import datetime as _dt
import html
import io
import json
import re
from pathlib import Path
from typing import Any

from . import __version__
from .api import ZsbenchError
from .compare import METRIC_LABELS, Entry, fmt
from .report import LEGEND, WideTable, wide_tables
from .results import METRICS, FoldRecord, ResultRecord

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
MAX_PLOTTED_FOLDS = 6
HTML_LEGEND = ("reproduced (link to the run), difference, the paper's (or golden) number and its "
               "source; " + LEGEND.split("; ", 1)[1])
TOLERANCE = 1.0          # colour scale of the differences, points

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;
  color:#1d2330;background:#f6f7f9}
header{background:#1d2b4f;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:24px} header p{margin:0;opacity:.8;font-size:13px}
main{padding:8px 28px 40px;max-width:1500px}
h2{margin:28px 0 8px;font-size:20px;border-bottom:2px solid #d5d9e2;padding-bottom:4px}
h3{margin:18px 0 6px;font-size:16px}
table{border-collapse:collapse;background:#fff;font-size:13px;margin:6px 0 10px;
  box-shadow:0 1px 2px rgba(0,0,0,.08)}
th,td{border:1px solid #dde1e8;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#eef1f6;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.cell{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap;min-width:120px}
.rep{color:#667;font-size:12px} .d{font-size:12px;font-weight:600}
.ok{background:#e7f6ea} .warn{background:#fff4d6} .bad{background:#fde4e1} .none{background:#fff}
.dev{color:#b0421e;font-weight:700} .tr{color:#6a3fb5;font-weight:700}
.legend{font-size:12px;color:#555;margin:2px 0 14px}
.run{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:4px 18px 14px;
  margin:14px 0}
.plots{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
.plots figure{margin:0;background:#fff} figcaption{font-size:12px;color:#555}
svg{max-width:100%;height:auto}
pre{background:#f3f4f7;padding:8px;font-size:12px;overflow:auto;max-height:360px}
a{color:#1f4fbf;text-decoration:none} a:hover{text-decoration:underline}
.tag{display:inline-block;padding:1px 6px;border-radius:8px;font-size:12px;margin-right:4px}
.tag.clean{background:#e7f6ea} .tag.devs{background:#fde4e1} .tag.trans{background:#ece3fb}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _anchor(run_id: str) -> str:
    return "run-" + re.sub(r"[^A-Za-z0-9_-]", "_", run_id)


# --------------------------------------------------------------------------------------
# Plots (matplotlib -> inline SVG)
# --------------------------------------------------------------------------------------
class _Plotter:
    def __init__(self) -> None:
        try:
            import matplotlib
        except ImportError:
            raise ZsbenchError("the HTML report draws its plots with matplotlib: "
                               "pip install matplotlib (or zsbench[report])") from None
        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt

        self.plt = plt
        self.n = 0

    def svg(self, fig: Any) -> str:
        """The figure as an inline <svg> element with ids unique in the page."""
        self.n += 1
        with self.plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"zsbench{self.n}"}):
            buf = io.StringIO()
            fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
        self.plt.close(fig)
        text = buf.getvalue()
        text = text[text.index("<svg"):]
        # element ids of several figures would collide in one document: prefix them
        prefix = f"f{self.n}-"
        text = re.sub(r'id="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', text)
        text = re.sub(r'url\(#([^)]+)\)', lambda m: f"url(#{prefix}{m.group(1)})", text)
        text = re.sub(r'xlink:href="#([^"]+)"', lambda m: f'xlink:href="#{prefix}{m.group(1)}"', text)
        return text

    def scatter(self, points: list[tuple[float, float, str]], title: str,
                size: tuple[float, float] = (4.2, 4.0)) -> str:
        fig, ax = self.plt.subplots(figsize=size)
        labels = sorted({p[2] for p in points})
        cmap = self.plt.get_cmap("tab10")
        for i, lab in enumerate(labels):
            xs = [p[0] for p in points if p[2] == lab]
            ys = [p[1] for p in points if p[2] == lab]
            ax.scatter(xs, ys, s=28, color=cmap(i % 10), label=lab, edgecolor="white", linewidth=.5)
        lo = min([0.0] + [min(p[0], p[1]) for p in points])
        hi = max([100.0] + [max(p[0], p[1]) for p in points])
        ax.plot([lo, hi], [lo, hi], color="#888", lw=1, ls="--")
        ax.fill_between([lo, hi], [lo - TOLERANCE, hi - TOLERANCE], [lo + TOLERANCE, hi + TOLERANCE],
                        color="#2a9d4a", alpha=.15, lw=0)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel("reported (or golden)")
        ax.set_ylabel("reproduced")
        ax.set_title(title, fontsize=10)
        if labels and len(labels) <= 12:
            ax.legend(fontsize=7, loc="upper left", frameon=False)
        ax.grid(alpha=.3)
        return self.svg(fig)

    def class_bars(self, folds: list[FoldRecord]) -> str:
        folds = folds[:MAX_PLOTTED_FOLDS]
        k = max(len(f.class_counts.classes) for f in folds if f.class_counts)
        fig, axes = self.plt.subplots(1, len(folds), figsize=(3.6 * len(folds) + 1.2, .26 * k + 1.3),
                                      squeeze=False)
        for ax, f in zip(axes[0], folds):
            cc = f.class_counts
            assert cc is not None
            acc = [100.0 * c / t if t else 0.0 for c, t in zip(cc.correct, cc.total)]
            names = [_short(n) for n in cc.names] if cc.names else [f"class {c}" for c in cc.classes]
            ys = list(range(len(acc)))[::-1]
            colors = ["#2a9d4a" if a >= 50 else "#e0a100" if a >= 20 else "#d04a3a" for a in acc]
            ax.barh(ys, acc, color=colors, height=.7)
            ax.set_yticks(ys)
            ax.set_yticklabels(names, fontsize=7)
            ax.set_xlim(0, 100)
            ax.set_xlabel("accuracy (%)", fontsize=8)
            mean = (f.metrics.get("zsl_acc") or 0.0)
            ax.axvline(mean, color="#1d2b4f", lw=1, ls=":")
            ax.set_title(_short(f.name, 34), fontsize=8)
            ax.tick_params(axis="x", labelsize=7)
        fig.tight_layout()
        return self.svg(fig)

    def confusions(self, folds: list[FoldRecord]) -> str:
        folds = [f for f in folds if f.class_counts and f.class_counts.confusion][:MAX_PLOTTED_FOLDS]
        fig, axes = self.plt.subplots(1, len(folds), figsize=(3.3 * len(folds) + .6, 3.4),
                                      squeeze=False)
        for ax, f in zip(axes[0], folds):
            cc = f.class_counts
            assert cc is not None and cc.confusion is not None
            import numpy as np

            m = np.asarray(cc.confusion, dtype=float)
            rows = m.sum(1, keepdims=True)
            norm = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
            ax.imshow(norm, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
            k = len(m)
            if k <= 12:
                for i in range(k):
                    for j in range(k):
                        if m[i, j]:
                            ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=6,
                                    color="white" if norm[i, j] > .5 else "#1d2330")
            ticks = list(range(k)) if k <= 20 else []
            ax.set_xticks(ticks)
            ax.set_yticks(ticks)
            ax.set_xticklabels([str(cc.classes[i]) for i in ticks], fontsize=6, rotation=90)
            ax.set_yticklabels([str(cc.classes[i]) for i in ticks], fontsize=6)
            ax.set_xlabel("predicted class", fontsize=7)
            ax.set_ylabel("true class", fontsize=7)
            ax.set_title(_short(f.name, 34), fontsize=8)
        fig.tight_layout()
        return self.svg(fig)


def _short(text: str, n: int = 30) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# --------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------
def _diff_class(diff: float | None) -> str:
    if diff is None:
        return "none"
    return "ok" if abs(diff) <= TOLERANCE else "warn" if abs(diff) <= 5 * TOLERANCE else "bad"


def _table_html(t: WideTable) -> str:
    out = [f'<h3>{_e(METRIC_LABELS[t.metric])}</h3><table class="leaderboard" '
           f'data-protocol="{_e(t.protocol)}" data-metric="{_e(t.metric)}"><thead><tr><th>method</th>']
    out += [f"<th>{_e(c)}</th>" for c in t.columns]
    out.append("</tr></thead><tbody>")
    for label, devs, trans, cells in t.rows:
        marks = ((f' <span class="dev" title="{_e(", ".join(devs))}">†</span>' if devs else "")
                 + (' <span class="tr" title="transductive">‡</span>' if trans else ""))
        out.append(f"<tr><th>{_e(label)}{marks}</th>")
        for c in t.columns:
            cell = cells.get(c)
            if cell is None:
                out.append('<td class="cell none"></td>')
                continue
            kind = "golden" if cell.source.startswith("golden") else "reported"
            rep = (f'<span class="rep">{kind} {fmt(cell.reported)} ({_e(cell.source)})</span>'
                   if cell.reported is not None else '<span class="rep">no reported number</span>')
            diff = (f' <span class="d">{fmt(cell.diff, signed=True)}</span>'
                    if cell.diff is not None else "")
            out.append(f'<td class="cell {_diff_class(cell.diff)}"><a href="#{_anchor(cell.run_id)}">'
                       f"{fmt(cell.reproduced)}</a>{diff}<br>{rep}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    notes = [f"† {_e(label)}: {_e(', '.join(devs))}" for label, devs, _, _ in t.rows if devs]
    out.append(f'<p class="legend">{_e(HTML_LEGEND)}' + ("<br>" + "<br>".join(notes) if notes else "")
               + "</p>")
    return "".join(out)


def _kv_table(items: list[tuple[str, Any]]) -> str:
    return ('<table class="meta">' + "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in items)
            + "</table>")


def _folds_table(rec: ResultRecord) -> str:
    head = ["fold", "dataset", "split", "rule", "group", *[METRIC_LABELS[m] for m in METRICS],
            "train", "test unseen", "test seen", "GZSL rule", "seconds"]
    out = ['<table class="folds"><thead><tr>' + "".join(f"<th>{_e(h)}</th>" for h in head)
           + "</tr></thead><tbody>"]
    for f in rec.folds:
        rule = (f"{f.gzsl_rule.get('rule')} (gamma={f.gzsl_rule.get('gamma')})" if f.gzsl_rule else "-")
        cells = [f.name, f.dataset, f"{len(f.seen)}/{len(f.unseen)}", f.sample_rule or "-",
                 f.group or "-"]
        out.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells)
                   + "".join(f'<td class="num">{fmt(f.metrics.get(m))}</td>' for m in METRICS)
                   + "".join(f'<td class="num">{n}</td>' for n in (f.n_train, f.n_test_unseen,
                                                                   f.n_test_seen))
                   + f"<td>{_e(rule)}</td><td class=\"num\">{f.seconds:.1f}</td></tr>")
    out.append("<tr><th colspan=5>mean</th>"
               + "".join(f'<td class="num"><b>{fmt(rec.summary.get(m))}</b></td>' for m in METRICS)
               + "<td colspan=5></td></tr></tbody></table>")
    return "".join(out)


def _run_section(rec: ResultRecord, path: Path | None, entries: list[Entry], plot: _Plotter) -> str:
    tags = ('<span class="tag clean">clean protocol</span>' if not rec.deviations else
            "".join(f'<span class="tag devs">{_e(d)}</span>' for d in rec.deviations))
    if rec.transductive:
        tags += '<span class="tag trans">transductive</span>'
    meta = [("method", _e(rec.plugin) + (f" (variant {_e(rec.reported_variant)})"
                                         if rec.reported_variant != "default" else "")),
            ("protocol", _e(rec.protocol)), ("datasets", _e(", ".join(rec.datasets))),
            ("created", _e(rec.created)), ("zsbench", _e(rec.zsbench_version)),
            ("device", _e(rec.device)), ("seed", _e(rec.seed)),
            ("data fingerprint", f"<code>{_e(rec.data_fingerprint)}</code>"),
            ("transductive", "yes" if rec.transductive else "no"),
            ("official-behaviour options", _e(", ".join(rec.deviations) or "none (clean)")),
            ("text", _e(json.dumps(rec.text))), ("paper", _e(rec.paper or "-")),
            ("record", _e(path) if path else "-")]
    versions = ", ".join(f"{k} {v}" for k, v in sorted(rec.versions.items()))
    meta.append(("versions", _e(versions or "-")))
    parts = [f'<section class="run" id="{_anchor(rec.run_id)}"><h3>{_e(rec.run_id)}</h3>'
             f"<p>{tags}</p>", "<h4>Folds</h4>", _folds_table(rec)]
    figs = []
    counted = [f for f in rec.folds if f.class_counts and f.class_counts.total]
    if counted:
        figs.append(("Per-class ZSL accuracy (unseen classes; dotted line: fold accuracy)",
                     plot.class_bars(counted)))
        if any(f.class_counts and f.class_counts.confusion for f in counted):
            figs.append(("Unseen-class confusion matrix (row-normalised; counts shown up to 12 "
                         "classes)", plot.confusions(counted)))
    else:
        figs.append(("Per-class accuracy and confusion matrix", "<p class=\"legend\">this record "
                     "carries no per-class counts (recorded by zsbench before they were added)</p>"))
    points = [(e.reported[m][0], e.reproduced[m] or 0.0, f"{e.group.label} {METRIC_LABELS[m]}")
              for e in entries for m in METRICS
              if m in e.reported and e.reproduced.get(m) is not None]
    if points:
        figs.append(("Reported vs reproduced (band: ±1 point)",
                     plot.scatter(points, rec.run_id[:40], (3.3, 3.2))))
    else:
        figs.append(("Reported vs reproduced", '<p class="legend">no reported number matches this run</p>'))
    if len([f for f in rec.folds if f.class_counts]) > MAX_PLOTTED_FOLDS:
        figs.append(("", f"<p>plots show the first {MAX_PLOTTED_FOLDS} folds</p>"))
    parts.append('<div class="plots">' + "".join(
        f"<figure>{svg}<figcaption>{_e(cap)}</figcaption></figure>" for cap, svg in figs) + "</div>")
    parts.append("<h4>Run</h4>" + _kv_table(meta))
    parts.append("<details><summary>config</summary><pre>"
                 + _e(json.dumps(rec.config, indent=2, sort_keys=True)) + "</pre></details>")
    parts.append("</section>")
    return "".join(parts)


def html_page(entries: list[Entry], records: list[tuple[Path, ResultRecord]],
              title: str = "zsbench leaderboard") -> str:
    """The whole page as a string (UTF-8 HTML, nothing external)."""
    plot = _Plotter()
    tables = wide_tables(entries)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    body = [f"<header><h1>{_e(title)}</h1><p>{len(records)} run(s), generated {now} by zsbench "
            f"{_e(__version__)}. Cells: reproduced (link to the run), difference to the paper's "
            "number (green within 1 point, amber within 5, red beyond), the reported number "
            "and its source.</p></header><main>"]
    points = [(e.reported[m][0], e.reproduced[m] or 0.0, e.rec.protocol)
              for e in entries for m in METRICS if m in e.reported and e.reproduced.get(m) is not None]
    if points:
        body.append('<h2>All runs: reported vs reproduced</h2><div class="plots"><figure>'
                    + plot.scatter(points, "every matched number") + "</figure></div>")
    for protocol in dict.fromkeys(t.protocol for t in tables):
        body.append(f'<h2 id="protocol-{_e(protocol)}">Protocol {_e(protocol)}</h2>')
        body += [_table_html(t) for t in tables if t.protocol == protocol]
    body.append("<h2>Runs</h2>")
    for path, rec in sorted(records, key=lambda pr: (pr[1].protocol, pr[1].plugin, pr[1].created)):
        mine = [e for e in entries if e.rec is rec]
        body.append(_run_section(rec, path, mine, plot))
    body.append("</main>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
            + "".join(body) + "</body></html>\n")
