"""Gradient cosine, conflict frequency and their tracker (Yu et al., 2020)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from polytask.deep.architectures import MLP, SharedBottom
from polytask.relate import (
    GradientSimilarityTracker,
    cosine_from_gramian,
    measure_gradient_similarity,
)


def reference_cosine(J: np.ndarray) -> np.ndarray:
    """Pairwise cosines of the rows of J, written out with explicit norms (zero rows -> 0)."""
    m = J.shape[0]
    out = np.zeros((m, m))
    for i in range(m):
        for j in range(m):
            ni, nj = np.linalg.norm(J[i]), np.linalg.norm(J[j])
            if ni > 0 and nj > 0:
                out[i, j] = float(J[i] @ J[j]) / (ni * nj)
    return out


@pytest.mark.parametrize(("m", "p", "seed"), [(2, 3, 0), (4, 10, 1), (6, 4, 2)])
def test_cosine_matches_explicit_vectors(m: int, p: int, seed: int) -> None:
    J = np.random.default_rng(seed).normal(size=(m, p))
    cos, zero = cosine_from_gramian(J @ J.T, return_mask=True)
    np.testing.assert_allclose(cos, reference_cosine(J), atol=1e-12)
    assert not zero.any()
    np.testing.assert_allclose(np.diag(cos), 1.0)


def test_zero_gradients_give_zero_and_are_flagged_never_nan() -> None:
    J = np.array([[1.0, 2.0], [0.0, 0.0], [-3.0, 1.0]])
    cos, zero = cosine_from_gramian(J @ J.T, return_mask=True)
    assert zero.tolist() == [False, True, False]
    assert np.isfinite(cos).all()
    assert (cos[1] == 0).all() and (cos[:, 1] == 0).all()
    np.testing.assert_allclose(cos, reference_cosine(J), atol=1e-12)


def test_atol_treats_tiny_gradients_as_zero() -> None:
    J = np.array([[1.0, 0.0], [1e-8, 1e-8]])
    _, zero = cosine_from_gramian(J @ J.T, atol=1e-12, return_mask=True)
    assert zero.tolist() == [False, True]


def test_tiny_but_nonzero_norms_do_not_underflow() -> None:
    # squared norms ~1e-300: their product (~1e-600) would underflow to 0
    J = np.array([[1e-150, 0.0], [1e-150, 1e-150]])
    cos = cosine_from_gramian(J @ J.T)
    np.testing.assert_allclose(cos[0, 1], 1 / np.sqrt(2), rtol=1e-12)


def test_rounding_asymmetry_of_a_float32_gramian_is_accepted() -> None:
    J = torch.randn(3, 200_000, generator=torch.Generator().manual_seed(0))
    G = J @ J.T
    cos = cosine_from_gramian(G)
    np.testing.assert_array_equal(cos, cos.T)
    np.testing.assert_allclose(cos, reference_cosine(J.double().numpy()), atol=1e-4)


def test_accepts_a_torch_gramian() -> None:
    J = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    cos = cosine_from_gramian(J @ J.T)
    assert isinstance(cos, np.ndarray)
    np.testing.assert_allclose(cos[0, 1], 1 / np.sqrt(2), rtol=1e-6)


@pytest.mark.parametrize(
    ("G", "match"),
    [
        (np.ones((2, 3)), "square"),
        (np.ones(3), "2-D"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), "finite"),
        (np.array([[1.0, 0.5], [0.2, 1.0]]), "symmetric"),
        (np.array([[1.0, 0.5], [-0.5, 1.0]]), "symmetric"),
        (np.array([[-1.0, 0.0], [0.0, 1.0]]), "non-negative diagonal"),
    ],
)
def test_cosine_rejects_bad_gramians(G: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cosine_from_gramian(G)


def test_cosine_rejects_negative_atol() -> None:
    with pytest.raises(ValueError, match="atol"):
        cosine_from_gramian(np.eye(2), atol=-1.0)


def _steps(seed: int, n_steps: int = 6, m: int = 3, p: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for s in range(n_steps):
        J = rng.normal(size=(m, p))
        if s % 3 == 1:
            J[2] = 0.0  # task 2 has no label at this step
        out.append(J)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tracker_means_and_conflict_frequency(seed: int) -> None:
    steps = _steps(seed)
    tracker = GradientSimilarityTracker(["a", "b", "c"])
    for J in steps:
        tracker.update(J @ J.T)
    s = tracker.summary()
    # independent reference: per-pair lists of the defined cosines
    for i in range(3):
        for j in range(3):
            vals = [
                reference_cosine(J)[i, j]
                for J in steps
                if np.linalg.norm(J[i]) > 0 and np.linalg.norm(J[j]) > 0
            ]
            assert s.n_defined[i, j] == len(vals)
            np.testing.assert_allclose(s.mean_cosine[i, j], np.mean(vals), atol=1e-12)
            np.testing.assert_allclose(
                s.conflict_frequency[i, j], np.mean([v < 0 for v in vals]), atol=1e-12
            )
    assert s.n_steps == len(steps)
    assert s.n_defined[0, 2] == len(steps) - 2


def test_tracker_pair_never_defined_reports_zero_and_count() -> None:
    tracker = GradientSimilarityTracker(["a", "b"])
    tracker.update(np.diag([1.0, 0.0]))
    s = tracker.summary()
    assert s.mean_cosine[0, 1] == 0.0 and s.n_defined[0, 1] == 0
    assert np.isfinite(s.mean_cosine).all() and np.isfinite(s.conflict_frequency).all()


def test_tracker_update_returns_the_step_cosine() -> None:
    J = np.array([[1.0, 0.0], [-1.0, 0.0]])
    cos = GradientSimilarityTracker(["a", "b"]).update(torch.tensor(J @ J.T))
    assert cos[0, 1] == pytest.approx(-1.0)


def test_state_dict_resume_equals_uninterrupted_run() -> None:
    steps = _steps(3, n_steps=8)
    full = GradientSimilarityTracker(["a", "b", "c"])
    for J in steps:
        full.update(J @ J.T)
    first = GradientSimilarityTracker(["a", "b", "c"])
    for J in steps[:5]:
        first.update(J @ J.T)
    state = json.loads(json.dumps(first.state_dict()))  # primitives only
    resumed = GradientSimilarityTracker(["a", "b", "c"])
    resumed.load_state_dict(state)
    for J in steps[5:]:
        resumed.update(J @ J.T)
    a, b = full.summary(), resumed.summary()
    np.testing.assert_array_equal(a.mean_cosine, b.mean_cosine)
    np.testing.assert_array_equal(a.conflict_frequency, b.conflict_frequency)
    np.testing.assert_array_equal(a.n_defined, b.n_defined)
    assert a.n_steps == b.n_steps == 8


def test_reset_forgets_everything() -> None:
    tracker = GradientSimilarityTracker(["a", "b"])
    tracker.update(np.eye(2))
    tracker.reset()
    assert tracker.n_steps == 0 and (tracker.summary().n_defined == 0).all()


def test_load_state_dict_errors() -> None:
    tracker = GradientSimilarityTracker(["a", "b"])
    state = tracker.state_dict()
    with pytest.raises(ValueError, match="for tasks"):
        GradientSimilarityTracker(["a", "c"]).load_state_dict(state)
    with pytest.raises(ValueError, match="missing keys"):
        tracker.load_state_dict({k: v for k, v in state.items() if k != "n_defined"})
    with pytest.raises(ValueError, match="shape"):
        tracker.load_state_dict({**state, "sum_cosine": [[0.0]]})
    with pytest.raises(ValueError, match="n_steps"):
        tracker.load_state_dict({**state, "n_steps": -1})
    with pytest.raises(ValueError, match="counts"):
        tracker.load_state_dict({**state, "n_defined": [[0, -1], [0, 0]]})


def test_tracker_errors() -> None:
    with pytest.raises(ValueError, match="at least one task"):
        GradientSimilarityTracker([])
    with pytest.raises(ValueError, match="duplicates"):
        GradientSimilarityTracker(["a", "a"])
    with pytest.raises(ValueError, match=r"shape \(2, 2\) for tasks \['a', 'b'\]"):
        GradientSimilarityTracker(["a", "b"]).update(np.eye(3))


def test_to_frame_lists_every_ordered_pair() -> None:
    tracker = GradientSimilarityTracker(["a", "b", "c"])
    tracker.update(np.eye(3) + 0.5)
    frame = tracker.summary().to_frame()
    assert len(frame) == 6
    assert set(frame.columns) == {"task", "other", "mean_cosine", "conflict_frequency",
                                  "n_defined"}


def _model() -> SharedBottom:
    torch.manual_seed(0)
    return SharedBottom(
        MLP([4, 6, 5], activate_last=True), {"a": MLP([5, 1]), "b": MLP([5, 1]), "c": MLP([5, 1])}
    ).double()


def test_measure_matches_separate_backward_passes() -> None:
    model = _model()
    gen = torch.Generator().manual_seed(1)
    batches = []
    for k in range(3):
        x = torch.randn(8, 4, generator=gen, dtype=torch.float64)
        targets = {t: torch.randn(8, 1, generator=gen, dtype=torch.float64) for t in "abc"}
        if k == 1:
            del targets["c"]  # c has no label: zero gradient at this batch
        batches.append((x, targets))
    before = [p.detach().clone() for p in model.parameters()]
    summary = measure_gradient_similarity(model, ["a", "b", "c"], batches)
    # reference: one backward per task, cosines by hand
    shared = list(model.shared_parameters())
    cos_steps = []
    for x, targets in batches:
        preds = model(x)
        rows = []
        for t in "abc":
            if t in targets:
                loss = ((preds[t] - targets[t]) ** 2).mean()
                grads = torch.autograd.grad(loss, shared, retain_graph=True)
                rows.append(torch.cat([g.reshape(-1) for g in grads]).numpy())
            else:
                rows.append(np.zeros(sum(p.numel() for p in shared)))
        cos_steps.append(reference_cosine(np.stack(rows)))
    expected_ab = np.mean([c[0, 1] for c in cos_steps])
    expected_ac = np.mean([cos_steps[0][0, 2], cos_steps[2][0, 2]])
    np.testing.assert_allclose(summary.mean_cosine[0, 1], expected_ab, rtol=1e-10)
    np.testing.assert_allclose(summary.mean_cosine[0, 2], expected_ac, rtol=1e-10)
    assert summary.n_defined[0, 2] == 2 and summary.n_steps == 3
    for p, q in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, q) and p.grad is None


def test_measure_errors() -> None:
    model = _model()
    x = torch.randn(4, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="at least one"):
        measure_gradient_similarity(model, ["a", "b", "c"], [])
    with pytest.raises(ValueError, match=r"batches\[0\]"):
        measure_gradient_similarity(model, ["a", "b", "c"], [x])  # type: ignore[list-item]
    plain = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="shared_parameters"):
        measure_gradient_similarity(plain, ["a"], [(x, {})])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="requires grad"):
        measure_gradient_similarity(model, ["a", "b", "c"], [(x, {})], params=[])
