"""Tests for ``polytask bench | relate | report``: real subprocesses, and ``main()``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from polytask.cli import main

TINY = """
name: tiny
seeds: 2
dataset:
  synthetic: mmoe
  params: {n_samples: 120, n_features: 4, n_tasks: 2, correlation: 0.8}
models:
  - {name: STL, type: deep, stl: true, arch_params: {hidden: [4]}, epochs: 1, lr: 0.01}
  - {name: MTL, type: deep, method: mgda, arch_params: {hidden: [4]}, epochs: 1, lr: 0.01}
  - {name: STL ridge, type: linear, model: ridge, fit: per_task, params: {beta: 0.1}}
relate:
  model: {method: mean, arch_params: {hidden: [4]}, epochs: 1}
  affinity: false
  grouping: {k: 2, measure: gradient}
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "polytask", *args], capture_output=True,
                          text=True, timeout=600, env=env)


def _one_line_error(returncode: int, stderr: str, match: str) -> None:
    assert returncode == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert match in lines[0]
    assert "Traceback" not in stderr


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def bench_dir(config: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("bench") / "run"
    out = _run("bench", str(config), "--run-dir", str(run_dir), "--no-progress",
               "--threads", "1")
    assert out.returncode == 0, out.stderr
    assert "Δm% against the baseline (mse" in out.stdout
    assert "6 run(s) trained, 0 reused" in out.stdout
    return run_dir


def test_help_lists_the_experiment_commands() -> None:
    out = _run("--help")
    assert out.returncode == 0
    for name in ("bench", "relate", "report"):
        assert name in out.stdout


def test_bench_subprocess_writes_the_run_directory(bench_dir: Path) -> None:
    for name in ("config.yaml", "run.json", "results.csv", "per_task.csv", "delta_m.csv",
                 "negative_transfer.csv", "report.html"):
        assert (bench_dir / name).stat().st_size > 0, name
    assert len(list((bench_dir / "units").rglob("seed-*.json"))) == 6
    assert set(pd.read_csv(bench_dir / "results.csv")["method"]) == {"STL", "MTL", "STL ridge"}
    assert "Δm% bars" in (bench_dir / "report.html").read_text(encoding="utf-8")


def test_bad_config_and_missing_run_dir_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.replace("method: mgda", "method: mgdaa"))
    out = _run("bench", str(bad), "--run-dir", str(tmp_path / "x"))
    _one_line_error(out.returncode, out.stderr, "polytask bench: error: models[1].method: "
                    "unknown 'mgdaa' (did you mean 'mgda'?)")
    assert not (tmp_path / "x").exists()
    out = _run("report", str(tmp_path / "no-run"))
    _one_line_error(out.returncode, out.stderr, "polytask report: error: ")
    assert "no-run is not a run directory" in out.stderr
    out = _run("bench", str(bad), "--threads", "0")
    assert out.returncode == 2 and "--threads" in out.stderr


def test_report_subprocess_writes_the_page(bench_dir: Path, tmp_path: Path) -> None:
    out = _run("report", str(bench_dir), "--output", str(tmp_path / "r.html"))
    assert out.returncode == 0, out.stderr
    assert str(tmp_path / "r.html") in out.stdout
    assert (tmp_path / "r.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_relate_then_rerun_in_process(bench_dir: Path, config: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["relate", str(config), "--run-dir", str(bench_dir), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "[default] groups for k=2 from gradient_cosine" in out
    assert "negative transfer of the all-task model" in out
    assert (bench_dir / "relatedness" / "default" / "summary.json").is_file()
    assert "Gradient cosine similarity" in (bench_dir / "report.html").read_text("utf-8")
    assert main(["bench", str(config), "--run-dir", str(bench_dir), "--no-progress",
                 "--no-report"]) == 0
    assert "0 run(s) trained, 6 reused" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "text", "match"),
    [
        (("relate", "{tmp}/broken.yaml"), "models: [\n", "broken.yaml: invalid YAML"),
        (("bench", "{tmp}/missing.yaml"), None, "missing.yaml' does not exist"),
        (("relate", "{tmp}/norelate.yaml"), TINY.split("relate:")[0],
         "polytask relate: error: relate: the configuration has no relate section"),
        (("bench", "{tmp}/seeds.yaml"), TINY.replace("seeds: 2", "seeds: [1, 1]"),
         "seeds: seeds must be distinct"),
    ],
)
def test_user_errors_in_process(args: tuple[str, ...], text: str | None, match: str,
                                tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.format(tmp=tmp_path) for a in args]
    if text is not None:
        Path(argv[1]).write_text(text)
    code = main([*argv, "--run-dir", str(tmp_path / "run"), "--no-progress"])
    _one_line_error(code, capsys.readouterr().err, match)


def test_a_failed_download_is_one_line_and_writes_no_results(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from polytask.data import _download
    from polytask.data._download import DatasetDownloadError

    def offline(*args: object, **kwargs: object) -> None:
        raise DatasetDownloadError("could not download clintox.csv: offline; place it by "
                                   "hand at <data_home>/clintox/clintox.csv")

    monkeypatch.setattr(_download, "fetch_file", offline)
    monkeypatch.setenv("POLYTASK_DATA", str(tmp_path / "empty"))
    config = tmp_path / "c.yaml"
    config.write_text("""
dataset: {name: clintox}
models: [{name: STL logistic, type: linear, model: ridge, fit: per_task}]
""")
    code = main(["bench", str(config), "--run-dir", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("polytask bench: error: could not download clintox.csv")
    assert not (tmp_path / "run" / "results.csv").exists()
