"""The ``polytask`` command line: ``polytask demo | datasets | bench | relate | report``.

User errors (bad arguments, missing files, invalid values) end with one line on stderr
and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, PermissionError)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors exit with status 2 and one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``polytask`` command."""
    parser = _Parser(
        prog="polytask",
        description="Multi-task learning, end to end, always compared with single-task "
        "learning.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    demo = sub.add_parser(
        "demo",
        help="train STL and MTL models on built-in synthetic tasks and compare them",
        description="Train single-task and multi-task models on synthetic tasks of known "
        "relatedness, print the per-task STL-vs-MTL table with Δm%, and write the table "
        "(CSV) and a plot (PNG) into a run directory.",
    )
    demo.add_argument("--run-dir", type=Path, default=None,
                      help="where to write results (default: runs/demo-<timestamp>)")
    demo.add_argument("--seeds", type=_positive_int, default=3,
                      help="number of seeds (default: 3)")
    demo.add_argument("--quick", action="store_true",
                      help="fewer settings and seeds, for a smoke run")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    ds = sub.add_parser(
        "datasets",
        help="list the real MTL datasets polytask can load and whether they are local",
    )
    ds.add_argument("--data-home", type=Path, default=None,
                    help="folder holding the datasets (default: $POLYTASK_DATA or "
                    "~/.polytask/data)")
    _add_experiment_parsers(sub)
    return parser


def _add_experiment_parsers(sub: Any) -> None:
    for name, text in (
        ("bench", "train the single-task baselines and every configured model on identical "
         "splits and seeds; write the tidy results, Δm% per method and an HTML report"),
        ("relate", "measure task relatedness (gradient conflicts, lookahead affinity, "
         "linear weights, pairwise transfer), recommend task groups for k models, train "
         "them and flag negative transfer"),
    ):
        cmd = sub.add_parser(name, help=text.split(";")[0], description=text[0].upper()
                             + text[1:] + ". Rerunning into the same run directory reuses "
                             "every finished run.")
        cmd.add_argument("config", type=Path, help="the YAML experiment configuration")
        cmd.add_argument("--run-dir", type=Path, default=None,
                         help="where to write results (default: runs/<name>)")
        cmd.add_argument("--quick", action="store_true",
                         help="two seeds, small data, two epochs: a smoke run")
        cmd.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        cmd.add_argument("--no-report", action="store_true",
                         help="do not write report.html")
        if name == "bench":
            cmd.add_argument("--jobs", type=_positive_int, default=1,
                             help="train this many runs at once, in separate processes "
                                  "(each with threads // jobs torch threads)")
        cmd.add_argument("--threads", type=_positive_int, default=None,
                         help="torch threads per process (default: torch's own; 1 is "
                              "fastest for small models on a busy machine)")
    rep = sub.add_parser("report", help="write the self-contained HTML report of a run "
                         "directory", description="Write RUN_DIR/report.html (plots "
                         "embedded) from what `polytask bench` and `polytask relate` wrote.")
    rep.add_argument("run_dir", type=Path, help="a run directory")
    rep.add_argument("--output", type=Path, default=None,
                     help="where to write the report (default: RUN_DIR/report.html)")


def _cmd_datasets(args: argparse.Namespace) -> int:
    import pandas as pd

    from polytask.data.datasets import list_datasets

    if args.data_home is not None and not args.data_home.is_dir():
        raise NotADirectoryError(f"--data-home: {args.data_home} is not a directory.")
    table = pd.DataFrame(list_datasets(data_home=args.data_home))
    print(table.to_string(index=False))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from polytask._demo import run_demo

    run_demo(run_dir=args.run_dir, n_seeds=args.seeds, quick=args.quick,
             progress=not args.no_progress, echo=print)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    import pandas as pd

    from polytask._runner import run_experiment

    result = run_experiment(args.config, args.run_dir, quick=args.quick,
                            progress=not args.no_progress, jobs=args.jobs)
    dm = result.delta_m
    if not dm.empty:
        cells = dm.assign(cell=[f"{m:+.2f} ± {s:.2f}" for m, s in
                                zip(dm["delta_m"], dm["delta_m_std"], strict=True)])
        wide = cells.pivot_table(index=["method", "baseline"], columns="setting",
                                 values="cell", aggfunc="first", sort=False)
        print(f"Δm% against the baseline ({result.metric}; mean ± std over seeds, "
              "positive = better):")
        with pd.option_context("display.width", 160, "display.max_columns", 20):
            print(wide.to_string())
    neg = result.negative_transfer
    flagged = neg[neg["negative"].astype(bool)] if not neg.empty else neg
    if not flagged.empty:
        pairs = [f"{m} on {t} ({s})" for m, t, s in
                 zip(flagged["method"], flagged["task"], flagged["setting"], strict=True)]
        more = f" and {len(pairs) - 6} more" if len(pairs) > 6 else ""
        print(f"Negative transfer (reliably worse than the baseline): "
              f"{', '.join(pairs[:6])}{more} (see negative_transfer.csv)")
    print(f"{result.n_trained} run(s) trained, {result.n_reused} reused; results in "
          f"{result.run_dir}")
    if not result.complete:
        print("The budget stopped the run early: run the same command again to continue.")
    _maybe_report(args, result.run_dir)
    return 0


def _cmd_relate(args: argparse.Namespace) -> int:
    from polytask._relate_runner import run_relatedness

    result = run_relatedness(args.config, args.run_dir, quick=args.quick,
                             progress=not args.no_progress)
    for setting, s in result.summaries.items():
        g = s["grouping"]
        groups = " | ".join(", ".join(group) for group in g["groups"])
        dm = s["delta_m"]
        print(f"[{setting}] groups for k={g['k']} from {g['matrix']}: {groups}")
        print(f"[{setting}] Δm% vs STL ({s['metric']}): groups {_signed(dm['groups'])}, "
              f"all tasks {_signed(dm['all tasks'])}; groups beat all tasks: "
              f"{'yes' if s['groups_beat_all_tasks'] else 'no'}, beat STL: "
              f"{'yes' if s['groups_beat_stl'] else 'no'}")
        negative = s["negative_transfer_tasks"]
        print(f"[{setting}] negative transfer of the all-task model: "
              f"{', '.join(negative) if negative else 'none detected'}")
    print(f"{result.n_trained} run(s) trained, {result.n_reused} reused; matrices and "
          f"summary in {result.run_dir / 'relatedness'}")
    if not result.complete:
        print("The budget stopped the run early: run the same command again to continue.")
    _maybe_report(args, result.run_dir)
    return 0


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}"


def _maybe_report(args: argparse.Namespace, run_dir: Path) -> None:
    if args.no_report:
        return
    from polytask.report import write_report

    print(f"Report: {write_report(run_dir)}")


def _cmd_report(args: argparse.Namespace) -> int:
    if not args.run_dir.is_dir():
        raise NotADirectoryError(f"{args.run_dir} is not a run directory")
    from polytask.report import write_report

    print(f"Report: {write_report(args.run_dir, args.output)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``polytask`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 on success, 2 on a user error.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    commands = {"demo": _cmd_demo, "datasets": _cmd_datasets, "bench": _cmd_bench,
                "relate": _cmd_relate, "report": _cmd_report}
    if getattr(args, "threads", None) is not None:
        import torch

        torch.set_num_threads(args.threads)
    from polytask.data._download import DatasetDownloadError

    try:
        return commands[args.command](args)
    except (*USER_ERRORS, DatasetDownloadError) as err:
        sys.stderr.write(f"polytask {args.command}: error: {err}\n")
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
