"""Real-data benchmark suite: one command per set in ``../shared/data`` (issue #6).

Each set is an experiment configuration in ``examples/`` (the protocol of
``../shared/benchmarks/README.md``: splits, metrics, seeds) run by the experiment runner
(``polytask bench``), so a run is resumable and its models, STL baselines and splits are
the ones the configuration names.  This script runs it, then writes the set's table to
``docs/benchmarks.md`` (between ``<!-- real-<set>:start/end -->``): Δm% against the
single-task baseline, the mean metric over tasks, how many tasks gained or lost and how
many are *reliably* worse (paired test over seeds: negative transfer), seconds per
training run on this machine, a per-task table, and the figure to beat with its source.

Run::

    python benchmarks/real_sets.py yeast            # one set, its default protocol
    python benchmarks/real_sets.py yeast --quick    # 2 epochs, 2 seeds, thin CV: minutes
    python benchmarks/real_sets.py all --quick
    python benchmarks/real_sets.py --list

Data are read from ``$POLYTASK_DATA`` (default ``../shared/data`` when it exists).
Results go to ``runs/bench/<set>[-quick]``; rerunning continues an interrupted run and
rewrites the table without retraining.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _real_tables import (
    per_task_table,
    summary_table,
    task_metric_table,
    undefined_note,
    unit_seconds,
)
from _school_common import machine_line as school_machine_line
from _school_common import write_section

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
MOLNET = ("DeepChem 2018 MoleculeNet benchmark, **validation** ROC-AUC "
          "(`tox21/deepchem_benchmark_valid_auc_2018.csv`)")


@dataclass(frozen=True)
class SetSpec:
    """One benchmark set: its configuration(s), protocol and figure to beat."""

    title: str
    config: str
    protocol: str
    figure: str
    datasets: tuple[str, ...] = ()  # run the config once per dataset name (MTR)
    # (task, metric, scale) scores shown beside the Δm% table: a figure to beat that is
    # not the Δm% metric (CoNLL-2000's chunk F1)
    extra: tuple[tuple[str, str, float], ...] = ()


SETS: dict[str, SetSpec] = {
    "yeast": SetSpec("Yeast (Mulan), 14 labels", "yeast.yaml",
                     "published 1,500/917 split, each label a binary task, 20 % of the "
                     "training part for epoch selection; ROC-AUC per label, Hamming loss "
                     "and micro/macro-F1 at threshold 0.5",
                     "binary relevance (one model per label) in the same run"),
    "scene": SetSpec("Scene (Mulan), 6 labels", "scene.yaml",
                     "published 1,211/1,196 split; as yeast", "binary relevance, same run"),
    "emotions": SetSpec("Emotions (Mulan), 6 labels", "emotions.yaml",
                        "published 391/202 split; as yeast", "binary relevance, same run"),
    "tox21": SetSpec("Tox21, 12 assays, random split", "tox21.yaml",
                     "ECFP4 (Morgan r=2, 1024 bits, RDKit), 80/10/10 random split per seed, "
                     "missing labels masked, mean test ROC-AUC over tasks",
                     f"{MOLNET}: multitask NN 0.754, GraphConv 0.832, RF 0.763; issue goal "
                     "≥ 0.80 mean **test** ROC-AUC"),
    "tox21_scaffold": SetSpec("Tox21, 12 assays, scaffold split", "tox21_scaffold.yaml",
                              "as tox21, Bemis–Murcko scaffold split 80/10/10 (the same "
                              "split for every seed; seeds vary the weights)",
                              f"{MOLNET}: multitask NN 0.725, GraphConv 0.764"),
    "sider": SetSpec("SIDER, 27 side-effect classes", "sider.yaml", "as tox21 (random)",
                     f"{MOLNET}: multitask NN 0.662"),
    "clintox": SetSpec("ClinTox, 2 tasks", "clintox.yaml", "as tox21 (random)",
                       f"{MOLNET}: multitask NN 0.793"),
    "toxcast": SetSpec("ToxCast, 617 assays", "toxcast.yaml", "as tox21 (random)",
                       f"{MOLNET}: multitask NN 0.676"),
    "census_income": SetSpec(
        "Census-income KDD: income > 50K and never married", "census_income.yaml",
        "the 99,762-row test file only, split 50/25/25 (train/val/test) at random per "
        "seed; categorical columns one-hot; ROC-AUC per task",
        "MMoE reproduction (PaddleRec README): income 0.949, marital 0.994 on the "
        "original split, not directly comparable; STL vs shared-bottom vs MMoE vs PLE "
        "in the same run"),
    "multi_mnist": SetSpec(
        "Multi-MNIST (left / right digit)", "multi_mnist.yaml",
        "Pareto-MTL construction from the 10k MNIST test images (36×36 canvas, shifts ≤ "
        "4 px, max, resized to 28×28), LeNet-style shared CNN, accuracy per task",
        "STL vs MTL in the same run"),
    "multi_fashion": SetSpec(
        "Multi-Fashion (left / right item)", "multi_fashion.yaml",
        "as Multi-MNIST, from Fashion-MNIST", "STL vs MTL in the same run"),
    "multi_fashion_mnist": SetSpec(
        "Multi-(Fashion+MNIST) (left digit / right item)", "multi_fashion_mnist.yaml",
        "as Multi-MNIST, a digit and a Fashion-MNIST item per image",
        "STL vs MTL in the same run"),
    "mtr": SetSpec("Multi-target regression (Mulan), 14 sets", "mtr.yaml",
                   "10-fold CV, one fold per seed (folds 0-2 by default, `--seeds 10` for "
                   "all ten), relative RMSE per target, averaged over targets (aRRMSE, "
                   "lower is better)",
                   "single-target models in the same run",
                   datasets=("andro", "atp1d", "atp7d", "edm", "enb", "jura", "oes10",
                             "oes97", "osales", "scpf", "sf1", "sf2", "slump", "wq")),
    "conll2000": SetSpec(
        "CoNLL-2000: POS tagging + chunking", "conll2000.yaml",
        "the given train/test split; window-of-words MLP (Collobert & Weston 2008); "
        "POS accuracy and chunk F1 (conlleval)",
        "shared-task best chunk F1 94.13, baseline 77.07 (`conll2000/README`)",
        extra=(("chunk", "chunk_f1_ids", 100.0), ("pos", "accuracy", 100.0))),
}


def machine_line(jobs: int) -> str:
    """The shared machine facts plus torch's version and the training processes."""
    import torch

    threads = max(1, torch.get_num_threads() // jobs)
    return (f"{school_machine_line()}; torch {torch.__version__}, {jobs} training "
            f"process(es) of {threads} thread(s)")


def _config(spec: SetSpec, dataset: str | None, quick: bool, seeds: int | None):
    from polytask._config import load_config, parse_config

    path = EXAMPLES / spec.config
    if dataset is None:
        cfg = load_config(path)
    else:
        raw = yaml.safe_load(path.read_text())
        raw["name"] = f"{raw.get('name', 'mtr')}-{dataset}"
        raw["dataset"] = {**raw["dataset"], "name": dataset}
        cfg = parse_config(raw, base_dir=path.parent)
    n = seeds if seeds is not None else (min(2, len(cfg.seeds)) if quick else None)
    if n is not None:
        cfg = dataclasses.replace(cfg, seeds=tuple(cfg.seeds[:n]) if n <= len(cfg.seeds)
                                  else tuple(range(n)))
    return cfg


def run_set(name: str, quick: bool, seeds: int | None, runs: Path, write: bool,
            jobs: int = 1) -> str:
    """Run (or resume) one set and return its markdown section."""
    from polytask._runner import run_experiment

    spec = SETS[name]
    start = time.monotonic()
    machine = machine_line(jobs)
    parts: list[tuple[str, Path, str, str]] = []
    for ds in spec.datasets or (None,):
        cfg = _config(spec, ds, quick, seeds)
        sub = runs / (name + ("-quick" if quick else "")) / (ds or "")
        res = run_experiment(cfg, sub, quick=quick, progress=sys.stderr.isatty(), jobs=jobs)
        if not res.complete:
            raise SystemExit(f"{name}: the run stopped at its budget; rerun to continue")
        settings = list(res.delta_m["setting"].unique())
        for setting in settings:
            label = ds or (setting if len(settings) > 1 else "")
            parts.append((label, sub, setting, res.metric))
    minutes = (time.monotonic() - start) / 60
    unit_min = sum(unit_seconds(sub)["seconds"].sum() for sub in {p[1] for p in parts}) / 60
    cmd = f"python benchmarks/real_sets.py {name}" + (" --quick" if quick else "") + (
        f" --seeds {seeds}" if seeds is not None else "") + (
        f" --jobs {jobs}" if jobs != 2 else "")
    lines = [f"### {spec.title}", "",
             f"Command: `{cmd}` (configuration `examples/{spec.config}`).  Training "
             f"time, summed over all runs: {unit_min:.1f} min (÷ jobs for the wall "
             f"time; this invocation: {minutes:.1f} min, finished runs are reused).  ",
             f"Machine: {machine}.  ",
             f"Protocol: {spec.protocol}.  ", f"Figure to beat: {spec.figure}.", ""]
    if quick:
        lines += ["*Quick run (2 epochs, at most 2 seeds, thin CV grids): a smoke test of "
                  "the command, not a result.*", ""]
    for label, sub, setting, metric in parts:
        if label:
            lines += [f"#### {label}", ""]
        lines += [summary_table(sub, setting, metric), ""]
        note = undefined_note(sub, setting, metric)
        if note:
            lines += [note, ""]
        if spec.extra:
            lines += ["Scores of the figure to beat (test, mean ± std over seeds, in %):", "",
                      task_metric_table(sub, setting, spec.extra), ""]
        lines += [f"Per task ({metric}, mean over seeds; ▼ = negative transfer: worse than "
                  "the baseline in a paired test over seeds at level 0.05 and by at least "
                  "1 % of its score):", "", per_task_table(sub, setting, metric), ""]
    text = "\n".join(lines)
    if write:
        write_section(f"real-{name}", text, ROOT / "docs" / "benchmarks.md")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="*", help="set names, or 'all'")
    parser.add_argument("--quick", action="store_true", help="2 epochs, 2 seeds, thin CV")
    parser.add_argument("--seeds", type=int, default=None, help="override the seed count")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/")
    parser.add_argument("--list", action="store_true", help="list the sets and exit")
    parser.add_argument("--jobs", type=int, default=2,
                        help="training runs at once, one process each (default 2)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: these models are small, "
                             "and two threads per process oversubscribe a shared 2-core "
                             "machine badly)")
    args = parser.parse_args()
    if args.list or not args.sets:
        for k, s in SETS.items():
            print(f"{k:16s} {s.title}  (examples/{s.config})")
        return
    names = list(SETS) if args.sets == ["all"] else args.sets
    unknown = [n for n in names if n not in SETS]
    if unknown:
        parser.error(f"unknown set(s) {unknown}; known: {sorted(SETS)}")
    import torch

    torch.set_num_threads(args.threads * args.jobs)  # the workers get `threads` each
    shared = ROOT.parent / "shared" / "data"
    if "POLYTASK_DATA" not in os.environ and shared.is_dir():
        os.environ["POLYTASK_DATA"] = str(shared)
    for n in names:
        print(run_set(n, args.quick, args.seeds, args.runs, not args.no_write, args.jobs),
              flush=True)


if __name__ == "__main__":
    main()
