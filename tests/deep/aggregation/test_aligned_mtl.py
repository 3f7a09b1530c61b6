"""Aligned-MTL: orthogonal, equal-norm aligned gradients (condition number 1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from polytask.deep.aggregation import AlignedMTL, AlignedMTLWeighting
from polytask.deep.aggregation._aligned_mtl import alignment_matrix

from ._asserts import assert_close


def _jacobian(m: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, n)) * rng.uniform(0.1, 10.0, (m, 1))


@pytest.mark.parametrize(("m", "n"), [(2, 3), (3, 3), (4, 9)])
def test_aligned_gradients_are_orthogonal_with_equal_norms(m: int, n: int) -> None:
    jacobian = _jacobian(m, n, m + n)
    aligned = alignment_matrix(jacobian @ jacobian.T, "min", 1e-16) @ jacobian
    sigma_min = np.linalg.svd(jacobian, compute_uv=False).min()
    np.testing.assert_allclose(aligned @ aligned.T, sigma_min**2 * np.eye(m),
                               atol=1e-9 * sigma_min**2)


@pytest.mark.parametrize("mode", ["min", "median", "rmse"])
def test_matches_the_procrustes_solution(mode: str) -> None:
    # Closest matrix with orthogonal equal-norm rows: σ U Vᵀ from the SVD J = U Σ Vᵀ.
    jacobian = _jacobian(4, 7, 3)
    u, s, vt = np.linalg.svd(jacobian, full_matrices=False)
    sigma = {"min": s.min(), "median": np.sqrt(np.median(s**2)),
             "rmse": np.sqrt(np.mean(s**2))}[mode]
    expected = (sigma * u @ vt).sum(axis=0)  # default preferences: all ones
    d = AlignedMTL(mode)(torch.from_numpy(jacobian))  # type: ignore[arg-type]
    np.testing.assert_allclose(d.numpy(), expected, atol=1e-9 * sigma)


def test_rank_deficient_aligns_on_the_row_space() -> None:
    rng = np.random.default_rng(0)
    jacobian = rng.standard_normal((4, 2)) @ rng.standard_normal((2, 5))  # rank 2
    gramian = jacobian @ jacobian.T
    b = alignment_matrix(gramian, "min", 1e-16)
    aligned = b @ jacobian
    eigvals, eigvecs = np.linalg.eigh(gramian)
    kept = eigvecs[:, eigvals > 1e-9 * eigvals.max()]
    sigma_sq = eigvals[eigvals > 1e-9 * eigvals.max()].min()
    np.testing.assert_allclose(aligned @ aligned.T, sigma_sq * kept @ kept.T, atol=1e-8)


def test_preference_vector_weights_the_aligned_gradients() -> None:
    jacobian = torch.from_numpy(_jacobian(3, 5, 9))
    gramian = jacobian @ jacobian.T
    b = torch.from_numpy(alignment_matrix(gramian.numpy(), "min", 1e-16))
    pref = [2.0, 0.5, 1.0]
    assert_close(AlignedMTLWeighting(pref_vector=pref)(gramian),
                 b @ torch.tensor(pref, dtype=torch.float64), what="preferences")


def test_errors() -> None:
    with pytest.raises(ValueError, match="scale_mode must be one of"):
        AlignedMTLWeighting("max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pref_vector must be a non-empty"):
        AlignedMTL(pref_vector=[1.0, float("nan")])
    with pytest.raises(ValueError, match="pref_vector has 2 entries but the gramian has 3"):
        AlignedMTLWeighting(pref_vector=[1.0, 1.0])(torch.eye(3))
