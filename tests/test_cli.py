"""Tests for the polytask command line (run as a real subprocess)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "polytask", *args], capture_output=True,
                          text=True, timeout=600, cwd=cwd)


def test_help_lists_the_commands() -> None:
    out = _run("--help")
    assert out.returncode == 0
    assert "demo" in out.stdout and "datasets" in out.stdout


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("nonsense",), "invalid choice: 'nonsense'"),
        (("demo", "--seeds", "0"), "--seeds: expected a positive integer, got 0"),
        (("demo", "--seeds", "x"), "expected a positive integer, got 'x'"),
        (("datasets", "--data-home", "/no/such/folder"), "/no/such/folder is not a directory"),
    ],
)
def test_user_errors_exit_2_with_one_line_and_no_traceback(args: tuple, match: str) -> None:
    out = _run(*args)
    assert out.returncode == 2
    assert match in out.stderr
    assert "Traceback" not in out.stderr


def test_datasets_lists_every_registered_set(tmp_path: Path) -> None:
    from polytask.data.datasets import DATASETS

    out = _run("datasets", "--data-home", str(tmp_path))
    assert out.returncode == 0, out.stderr
    for name in DATASETS:
        assert name in out.stdout


def test_demo_quick_writes_results_and_mtl_helps_related_tasks(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    out = _run("demo", "--quick", "--no-progress", "--run-dir", str(run_dir))
    assert out.returncode == 0, out.stderr
    assert "Δm%" in out.stdout
    for name in ("results.csv", "per_task.csv", "delta_m.csv", "delta_m.png"):
        assert (run_dir / name).stat().st_size > 0
    dm = pd.read_csv(run_dir / "delta_m.csv").set_index(["setting", "method"])
    # On strongly related tasks, mean-regularised MTL beats single-task ridge.
    assert dm.loc[("linear, rho=0.95", "mean-regularised MTL"), "delta_m"] > 0
    assert dm.loc[("linear, rho=0.95", "STL ridge"), "delta_m"] == pytest.approx(0.0)
    assert dm.loc[("deep, rho=0.95", "STL MLP"), "delta_m"] == pytest.approx(0.0)
    results = pd.read_csv(run_dir / "results.csv")
    assert set(results["method"]) == {"STL ridge", "pooled ridge", "mean-regularised MTL",
                                      "STL MLP", "shared-bottom", "MMoE"}
    # every model is scored on every task of its experiment
    counts = results.groupby(["setting", "method"]).size()
    assert counts[("linear, rho=0", "STL ridge")] == 6
    assert counts[("deep, rho=0.95", "MMoE")] == 2
    # the run ends with the relatedness summary, also written to relatedness.csv/.json
    assert "[relatedness]" in out.stdout
    assert out.stdout.rstrip().splitlines()[-1].startswith("Wrote relatedness.csv")
    assert out.stdout.index("[relatedness]") > out.stdout.index("Δm%")
    assert (run_dir / "relatedness.json").stat().st_size > 0
    rel = pd.read_csv(run_dir / "relatedness.csv").set_index(["setting", "measure"])
    for measure in ("weight cosine, mean-regularised MTL", "weight cosine, per-task ridge"):
        low, high = (rel.loc[(f"linear, rho={r}", measure)] for r in ("0", "0.95"))
        # planted: the generator's weight cosine; measured: the fitted weights' cosine
        assert low["planted"] == pytest.approx(0.0, abs=1e-9)
        assert high["planted"] == pytest.approx(0.95)
        assert high["measured"] > low["measured"] + 0.2
    grad = rel.xs("gradient cosine, shared-bottom (after training)", level="measure")
    assert grad.loc["deep, rho=0.95", "measured"] > grad.loc["deep, rho=0", "measured"]
    groups = rel.loc[("linear, rho=0.95", "weight cosine, mean-regularised MTL"), "groups_k2"]
    assert sorted(int(t) for g in groups.split(" | ") for t in g.split(",")) == list(range(6))
