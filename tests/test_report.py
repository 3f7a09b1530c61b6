"""Tests for the HTML report: content, self-containment, missing pieces, real rendering."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from polytask._config import parse_config
from polytask._report_plots import pareto_front
from polytask._runner import run_experiment
from polytask.report import build_report, write_report

_IMG = re.compile(r'<img alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _raw(n_tasks: int = 2, deep: bool = True, relate: bool = True) -> dict[str, Any]:
    arch = {"arch_params": {"hidden": [4]}, "epochs": 2, "batch_size": 32, "lr": 0.01}
    models: list[dict[str, Any]] = [
        {"name": "STL ridge", "type": "linear", "model": "ridge", "fit": "per_task",
         "params": {"beta": 0.1}},
        {"name": "trace", "type": "linear", "model": "trace_norm", "params": {"alpha": 0.1}},
    ]
    if deep:
        models += [{"name": "STL", "type": "deep", "stl": True, **arch},
                   {"name": "MTL", "type": "deep", "method": "upgrad", **arch}]
    raw: dict[str, Any] = {
        "name": "report-test", "seeds": 2,
        "dataset": {"synthetic": "clustered",
                    "params": {"n_samples": 60, "n_features": 5, "n_tasks": n_tasks,
                               "n_clusters": 1}},
        "models": models,
    }
    if relate:
        raw["relate"] = {"model": {"method": "mean", **arch}, "train": {"method": "ew", **arch},
                         "linear": {"model": "ridge", "params": {"beta": 0.1}},
                         "grouping": {"k": 1}}
    return raw


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from polytask._relate_runner import run_relatedness

    out = tmp_path_factory.mktemp("full")
    cfg = parse_config(_raw())
    run_experiment(cfg, out, progress=False)
    run_relatedness(cfg, out, progress=False)
    write_report(out)
    return out


def _images(page: str) -> list[tuple[str, bytes]]:
    return [(alt, base64.b64decode(data)) for alt, data in _IMG.findall(page)]


def test_report_shows_every_piece(full_run: Path) -> None:
    page = (full_run / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    alts = [alt for alt, _ in _images(page)]
    assert "Δm% bars" in alts
    assert "trade-off default" in alts
    assert "learning curves default" in alts
    for title in ("Gradient cosine similarity", "Gradient conflict frequency",
                  "Lookahead inter-task affinity (TAG)",
                  "Cosine of the linear model&#x27;s task weight vectors"):
        assert title in page
    assert "Recommended grouping for k = 1 models" in page
    assert "Negative transfer" in page and "reliably worse" in page
    assert "No relatedness run" not in page and "No benchmark results" not in page
    for method in ("STL ridge", "trace", "STL", "MTL"):
        assert f"<td class=\"l\">{method}</td>" in page


def test_report_is_self_contained_and_every_figure_is_a_valid_png(full_run: Path) -> None:
    from PIL import Image

    page = (full_run / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"(src|href)=\"(https?:|//|file:)", page)
    assert "<script" not in page and "<link" not in page and "@import" not in page
    images = _images(page)
    assert len(images) == page.count("<img ") >= 7  # bars, trade-off, curves, 4 heatmaps
    for alt, png in images:
        with Image.open(io.BytesIO(png)) as im:
            im.verify()
            assert im.format == "PNG" and im.size[0] > 50 and im.size[1] > 50, alt


def test_missing_pieces_are_replaced_by_notes(tmp_path: Path) -> None:
    page = build_report(tmp_path)
    for text in ("No benchmark results", "No per-task results", "No trade-off plot",
                 "No learning curves", "No relatedness run"):
        assert text in page
    assert "<img" not in page


def test_bench_only_many_tasks_and_linear_only(tmp_path: Path) -> None:
    run_experiment(parse_config(_raw(n_tasks=3, deep=False, relate=False)), tmp_path,
                   progress=False)
    page = build_report(tmp_path)
    assert "No relatedness run in this run directory" in page
    assert "exactly two main tasks; this run has 3" in page
    assert "No learning curves" in page
    assert "Δm% bars" in page


def test_unreadable_files_do_not_crash_the_report(full_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "broken"
    shutil.copytree(full_run, run_dir)
    (run_dir / "delta_m.csv").write_text("")
    (run_dir / "run.json").write_text("{not json")
    (run_dir / "relatedness" / "default" / "summary.json").write_text("[")
    next((run_dir / "logs").rglob("metrics.jsonl")).write_text("{broken\n")
    page = build_report(run_dir)
    assert "No benchmark results" in page and "Gradient cosine similarity" in page


def test_report_of_a_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError, match="does not exist or is not a directory"):
        build_report(tmp_path / "nope")


@pytest.mark.parametrize("higher", [True, False])
def test_pareto_front_matches_brute_force(higher: bool) -> None:
    rng = np.random.default_rng(0)
    pts = np.round(rng.normal(size=(30, 2)), 1)  # ties included
    sign = 1.0 if higher else -1.0
    expected = []
    for i, p in enumerate(pts):
        dominated = any(np.all(sign * q >= sign * p) and np.any(sign * q > sign * p)
                        for j, q in enumerate(pts) if j != i)
        expected.append(not dominated)
    assert pareto_front(pts, higher).tolist() == expected
    assert pareto_front(pts, higher).any()


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


_CHECK = """<script>window.addEventListener("load", () => {
  const imgs = [...document.images];
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt);
  const out = document.createElement("pre");
  out.id = "img-check";
  out.textContent = "IMAGES " + imgs.length + " BROKEN " + bad.length + " " + bad.join("|");
  document.body.appendChild(out);
});</script>"""


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary found")
def test_report_renders_in_headless_chromium(full_run: Path, tmp_path: Path) -> None:
    page = (full_run / "report.html").read_text(encoding="utf-8")
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", _CHECK + "</body>"), encoding="utf-8")
    shot = tmp_path / "shot.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
             "--virtual-time-budget=5000", "--window-size=1200,900"]
    chromium = _chromium()
    assert chromium is not None
    dom = subprocess.run([chromium, *flags, "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120)
    match = re.search(r"IMAGES (\d+) BROKEN (\d+)", dom.stdout)
    assert match, dom.stderr[-2000:]
    assert int(match.group(1)) == page.count("<img ") and int(match.group(2)) == 0
    subprocess.run([chromium, *flags, f"--screenshot={shot}", probe.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000
