"""Command line: ``zsbench run|list|plugins|report|check|check-plugin|data|sweep|compare``.

Thin by design: it parses arguments, builds the run config and calls the runner. It never
imports torch for ``list``, ``plugins`` or ``--help``. Every ZsbenchError becomes a one-line
(or few-line) message and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .api import ZsbenchError

LIST_KINDS = {"datasets": "datasets", "protocols": "protocols", "encoders": "encoders",
              "text": "text_sources", "text-encoders": "text_encoders", "methods": "methods"}


def _plugin_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", dest="plugin_flags", action="append", default=[], metavar="NAME",
                   help="'-p no:NAME' blocks a plugin; '-p NAME' loads it when autoload is off")
    p.add_argument("--no-autoload", action="store_true",
                   help="do not load entry-point plugins (also ZSBENCH_DISABLE_PLUGIN_AUTOLOAD=1)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zsbench", description="zsbench: benchmark harness for zero-shot skeleton-based "
        "action recognition. Commands: run, list, plugins, report, check, check-plugin, data, "
        "sweep, compare (`zsbench COMMAND --help` for each).")
    parser.add_argument("--version", action="version", version=f"zsbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser("run", help="run a method under a protocol and write a result record")
    r.add_argument("--plugin", "--method", dest="plugin", help="method plugin name (e.g. devise)")
    r.add_argument("--protocol", help="protocol name (default: synse)")
    r.add_argument("--dataset", help="dataset name (default: the protocol's default, 'synthetic')")
    r.add_argument("--data-root", type=Path, help="folder with prepared data / generated cache")
    r.add_argument("--out", type=Path, help="results folder (default: ./results)")
    r.add_argument("--cache-dir", type=Path, help="cache folder, also for the generated embedded "
                   "benchmark (default: $ZSBENCH_CACHE or ~/.cache/zsbench)")
    r.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: auto (CUDA when present)")
    r.add_argument("--seed", type=int)
    r.add_argument("--encoder", help="skeleton encoder plugin (default: the method's)")
    r.add_argument("--text-encoder", help="text encoder plugin (default: sbert)")
    r.add_argument("--run-id", help="name of the result folder (default: generated)")
    r.add_argument("--config", type=Path, help="TOML/YAML/JSON config file")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set method.epochs=5 --set seed=1")
    r.add_argument("--json", action="store_true", help="print the result record instead of a table")
    _plugin_args(r)

    ls = sub.add_parser("list", help="list registered components")
    ls.add_argument("kind", nargs="?", choices=sorted(LIST_KINDS), help="one kind (default: all)")
    _plugin_args(ls)

    pl = sub.add_parser("plugins", help="list plugins with their distribution, status and components")
    _plugin_args(pl)

    rep = sub.add_parser("report", help="leaderboard and tables (Markdown, CSV or a static "
                         "HTML page) from result records under DIR")
    rep.add_argument("dir", type=Path)
    rep.add_argument("--format", choices=["md", "csv", "html"], default="md",
                     help="md: leaderboard tables + per-run table; csv: the leaderboard in long "
                     "form (--table runs: the per-run/fold table); html: one self-contained page "
                     "with plots (needs matplotlib)")
    rep.add_argument("--table", choices=["leaderboard", "runs"], default="leaderboard",
                     help="which table --format csv writes (default: leaderboard)")
    rep.add_argument("--output", type=Path, help="write to this file (atomically) instead of stdout")
    rep.add_argument("--golden", type=Path, metavar="DIR", help="also compare embedded-benchmark "
                     "runs with the golden numbers in DIR (e.g. benchmarks/golden)")
    _plugin_args(rep)

    chk = sub.add_parser("check", help="compare results with the papers' reported numbers (or a "
                         "baseline); non-zero exit when a difference exceeds the tolerance or "
                         "nothing matched")
    chk.add_argument("dir", type=Path)
    chk.add_argument("--tolerance", type=float, default=1.0,
                     help="points: |reproduced - reported| above it fails (default 1.0)")
    chk.add_argument("--one-sided", action="store_true",
                     help="fail only when reproduced < reported - tolerance")
    chk.add_argument("--baseline", type=Path, help="JSON {metric: value} compared with each "
                     "run's mean, or a golden file of the regression matrix (benchmarks/golden/)")
    chk.add_argument("--no-commands", action="store_true",
                     help="do not list the reported numbers and the command reproducing each")
    _plugin_args(chk)

    cp = sub.add_parser("check-plugin", help="smoke-run a method on a shrunken embedded benchmark")
    cp.add_argument("name", help="method plugin name")
    cp.add_argument("--protocol", default="synse")
    cp.add_argument("--out", type=Path, help="results folder (default: a temporary folder)")
    _plugin_args(cp)

    data = sub.add_parser("data", help="dataset preparation")
    dsub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    prep = dsub.add_parser("prepare", help="parse raw files into zsbench's memory-mapped store")
    prep.add_argument("dataset")
    prep.add_argument("--raw", type=Path, required=True, help="folder with the raw files")
    prep.add_argument("--out", type=Path, help="output folder (default: ~/.cache/zsbench/data/DATASET)")
    prep.add_argument("--frames", type=int, choices=[50, 64, 300], help="fixed-length variant")
    prep.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    _plugin_args(prep)
    ver = dsub.add_parser("verify", help="re-hash prepared data and check it against its "
                          "recorded digests and fingerprint")
    ver.add_argument("target", metavar="DATASET|STORE",
                     help="a dataset name (its stores under the data root) or a store folder")
    ver.add_argument("--data-root", type=Path, help="data root (default: as for zsbench run)")
    ver.add_argument("--frames", type=int, choices=[50, 64, 300], help="only this length")
    _plugin_args(ver)
    from .cli_sweep import add_parsers

    add_parsers(sub, _plugin_args)      # sweep, compare
    return parser


def _load(args: argparse.Namespace):
    from .plugins import load_plugins

    blocked = [f[3:] for f in args.plugin_flags if f.startswith("no:")]
    requested = [f for f in args.plugin_flags if not f.startswith("no:")]
    return load_plugins(blocked=blocked, autoload=False if args.no_autoload else None,
                        requested=requested)


def cmd_list(args: argparse.Namespace) -> int:
    plugins = _load(args)
    kinds = [args.kind] if args.kind else list(LIST_KINDS)
    for kind in kinds:
        reg = plugins.registries[LIST_KINDS[kind]]
        print(f"{kind}:")
        for spec in reg:
            extra = ""
            if kind == "methods":
                extra = f" [inputs={spec.inputs}{', transductive' if spec.transductive else ''}]"
            elif kind == "text":
                extra = f" [kinds: {', '.join(spec.text_kinds)}]"
            elif kind == "protocols":
                extra = f" [{', '.join(spec.datasets) or 'synthetic'}]"
            desc = spec.description.splitlines()[0] if spec.description else ""
            print(f"  {spec.name:<18}{extra} {desc}  ({spec.plugin})")
            if kind == "methods" and spec.paper:
                print(f"  {'':<18}paper: {spec.paper.splitlines()[0]}")
        if not len(reg):
            print("  (none)")
    for info in plugins.broken():
        print(f"warning: plugin {info.name!r} is broken: {info.error}", file=sys.stderr)
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    plugins = _load(args)
    for info in sorted(plugins.plugins.values(), key=lambda i: i.name):
        dist = f"{info.distribution} {info.version}".strip() or "?"
        print(f"{info.name:<12} {info.status:<8} {dist:<24} {info.module}")
        if info.components:
            print(f"{'':<12} provides: {', '.join(info.components)}")
        if info.error:
            print(f"{'':<12} error: {info.error}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .config import build_run_config, read_config_file

    base: dict[str, Any] = read_config_file(args.config) if args.config else {}
    for key in ("plugin", "protocol", "dataset", "data_root", "out", "cache_dir", "device", "seed",
                "encoder", "text_encoder", "run_id"):
        val = getattr(args, key)
        if val is not None:
            base[key] = str(val) if isinstance(val, Path) else val
    if not base.get("plugin"):
        raise ZsbenchError("no method given: use --plugin NAME (see `zsbench list methods`)")
    cfg = build_run_config(base, args.overrides)
    plugins = _load(args)
    from .report import summary_table
    from .runner import run

    rec, path = run(cfg, plugins, log=lambda m: print(m, file=sys.stderr))
    if args.json:
        print(rec.to_json())
    else:
        print(summary_table(rec))
        print(f"result record: {path}")
    return 0


def _warn_unreadable(problems: list[str]) -> None:
    for p in problems:
        print(f"zsbench: warning: skipped {p}", file=sys.stderr)


def cmd_report(args: argparse.Namespace) -> int:
    from .compare import leaderboard, plugin_rows, read_golden_dir, with_golden
    from .report import leaderboard_csv, leaderboard_markdown, to_csv, to_markdown
    from .results import find_records, write_atomic

    problems: list[str] = []
    found = find_records(args.dir, problems)
    _warn_unreadable(problems)
    if not found:
        raise ZsbenchError(f"no readable result.json found under {args.dir}")
    records = [r for _, r in found]
    rows_for = plugin_rows(_load(args))
    if args.golden:
        if not args.golden.is_dir():
            raise ZsbenchError(f"--golden {args.golden}: not a folder of golden files")
        rows_for = with_golden(rows_for, read_golden_dir(args.golden))
    entries = leaderboard(list(found), rows_for)
    data: str | bytes
    if args.format == "html":
        from .leaderboard import html_page

        data = html_page(entries, found)
    elif args.format == "csv":
        data = leaderboard_csv(entries) if args.table == "leaderboard" else to_csv(records)
    else:
        from .stats import diagnostics_section, seeds_section

        data = (leaderboard_markdown(entries) + "### runs\n\n" + to_markdown(records)
                + seeds_section(found)      # mean ± std when a configuration has seeds
                + diagnostics_section(found, args.output.parent if args.output else None))
    if args.output:
        write_atomic(args.output, data)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print(data, end="")
    return 0


def read_baseline(path: Path) -> tuple[dict[str, float] | None, list[dict[str, str]] | None]:
    """``--baseline``: ``{metric: value}`` (whole-run means), or a golden file of the
    regression matrix (its ``numbers`` rows are matched per split group)."""
    from .compare import golden_rows

    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ZsbenchError(f"baseline {path}: {exc}") from None
    rows = golden_rows(data, path)
    if rows is not None:
        return None, rows
    if not isinstance(data, dict) or not all(isinstance(v, (int, float)) for v in data.values()):
        raise ZsbenchError(f"baseline {path}: expected {{metric: value}} or a golden file "
                           "with a 'numbers' list")
    return {k: float(v) for k, v in data.items()}, None


def cmd_check(args: argparse.Namespace) -> int:
    from .compare import compare_record, plugin_rows
    from .report import check_table, reproduce_listing
    from .results import find_records

    baseline, golden = read_baseline(args.baseline) if args.baseline else (None, None)
    unreadable: list[str] = []
    records = find_records(args.dir, unreadable)
    _warn_unreadable(unreadable)
    plugins = _load(args)
    rows_for = plugin_rows(plugins)
    comparisons = []
    for path, rec in records:
        rows = golden if golden is not None else rows_for(rec.plugin)
        comparisons += compare_record(rec, rows, baseline, path)
    if comparisons:
        print(check_table(comparisons, args.tolerance, args.one_sided))
    problems = [c for c in comparisons if c.outside(args.tolerance, args.one_sided)]
    for c in problems:
        print(f"REGRESSION {c.path}: {c.group} {c.metric} = {c.reproduced:.2f}, "
              f"{c.source} {c.reported:.2f}: difference {c.diff:+.2f} exceeds {args.tolerance}")
    if not args.no_commands and golden is None:
        for method in dict.fromkeys(rec.plugin for _, rec in records):
            rows = rows_for(method)
            if rows:
                spec = plugins.methods.get(method)
                print("\n" + reproduce_listing(method, rows, comparisons, spec.config))
    if not comparisons:
        print(f"nothing was compared: none of the {len(records)} record(s) under {args.dir} "
              "matches a reported number (or a --baseline value) for the metrics it measured")
        return 1
    print(f"checked {len(records)} record(s), {len(comparisons)} comparison(s): "
          f"{len(problems)} regression(s) (tolerance {args.tolerance}"
          + (", one-sided" if args.one_sided else "") + ")"
          + (f"; {len(unreadable)} unreadable record(s) skipped" if unreadable else ""))
    return 1 if problems or unreadable else 0


def _verify_hook(plugins: Any, target: str) -> Any:
    """A dataset's verify step: ``verify`` in the module of its ``prepare`` callable,
    ``(target, data_root, options) -> results``. ``target`` may be a store folder: its
    manifest names the dataset."""
    from .specs import load_object

    name = target
    if target not in plugins.datasets.names() and (Path(target) / "manifest.json").is_file():
        try:
            name = str(json.loads((Path(target) / "manifest.json").read_text())["dataset"])
        except (OSError, ValueError, KeyError, TypeError):
            name = ""
        refs = {s.prepare for s in plugins.datasets if s.prepare}
        if name not in plugins.datasets.names() and len(refs) == 1:
            name = next(s.name for s in plugins.datasets if s.prepare)
    spec = plugins.datasets.get(name)
    if not spec.prepare:
        raise ZsbenchError(f"dataset {spec.name!r} has no prepared data to verify")
    try:
        return load_object(spec.prepare.rsplit(":", 1)[0] + ":verify")
    except (ImportError, AttributeError, ZsbenchError):
        raise ZsbenchError(f"dataset {spec.name!r} has no verify step") from None


def cmd_data(args: argparse.Namespace) -> int:
    if args.data_command == "verify":
        plugins = _load(args)
        verify_opts = {"frames": args.frames} if args.frames else {}
        _verify_hook(plugins, args.target)(args.target, args.data_root, verify_opts)
        return 0
    if args.data_command != "prepare":
        raise ZsbenchError("usage: zsbench data prepare DATASET --raw DIR [--out DIR] [--frames N]"
                           "\n       zsbench data verify DATASET|STORE [--data-root DIR] [--frames N]")
    from .config import apply_override
    from .setup import default_cache_dir
    from .specs import load_object

    plugins = _load(args)
    spec = plugins.datasets.get(args.dataset)
    if not spec.prepare:
        raise ZsbenchError(f"dataset {spec.name!r} has no preparation step")
    options: dict[str, Any] = {}
    if args.frames:
        options["frames"] = args.frames
    for a in args.overrides:
        apply_override(options, a)
    out = args.out or default_cache_dir() / "data" / spec.name
    result = load_object(spec.prepare)(spec.name, args.raw, out, options)
    print(f"prepared {spec.name}: {result}")
    return 0


def cmd_check_plugin(args: argparse.Namespace) -> int:
    import tempfile

    from .report import summary_table
    from .setup import default_cache_dir
    from .testing import check_plugin

    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        rec, path = check_plugin(args.name, out=out, cache_dir=default_cache_dir(),
                                 protocol=args.protocol)
        print(summary_table(rec))
        kept = path if args.out else "discarded"
        print(f"check-plugin {args.name}: ok ({len(rec.folds)} fold(s), record {kept})")
    return 0


from .cli_sweep import cmd_compare, cmd_sweep  # noqa: E402

COMMANDS = {"run": cmd_run, "check-plugin": cmd_check_plugin, "list": cmd_list, "plugins": cmd_plugins,
            "report": cmd_report,
            "check": cmd_check, "data": cmd_data, "sweep": lambda a: cmd_sweep(a, _load),
            "compare": lambda a: cmd_compare(a)}


def describe_unexpected(exc: BaseException) -> str:
    """One line for an unexpected exception: the plugin whose code raised it (the innermost
    frame in a plugin's package), with file and line, else an internal error of zsbench."""
    import traceback

    frames = list(traceback.walk_tb(exc.__traceback__))
    owners = _plugin_packages()
    for frame, lineno in reversed(frames):
        top = str(frame.f_globals.get("__name__", "")).split(".")[0]
        if top in owners:
            return (f"error in plugin {owners[top]!r} at {frame.f_code.co_filename}:{lineno}: "
                    f"{type(exc).__name__}: {exc}")
    where = f" at {frames[-1][0].f_code.co_filename}:{frames[-1][1]}" if frames else ""
    return f"internal error{where}: {type(exc).__name__}: {exc}"


def _plugin_packages() -> dict[str, str]:
    """Top-level package of each installed plugin's module -> plugin name (zsbench's own
    package excluded: the core is not a plugin)."""
    from importlib import metadata

    from .plugins import ENTRY_POINT_GROUP

    out: dict[str, str] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        top = ep.value.split(":")[0].split(".")[0]
        if top and top != "zsbench":
            out.setdefault(top, ep.name)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    from .progress import quiet_third_party_bars

    quiet_third_party_bars()
    try:
        return COMMANDS[args.command](args)
    except ZsbenchError as exc:
        print(f"zsbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zsbench: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug in a plugin or the core: say whose, where, keep it short
        if os.environ.get("ZSBENCH_DEBUG"):
            raise
        print(f"zsbench: {describe_unexpected(exc)}\n"
              "(set ZSBENCH_DEBUG=1 to see the full traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
