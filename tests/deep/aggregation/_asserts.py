"""Property assertions shared by the tests of every aggregation method.

Each assertion takes ``aggregate``, a callable ``J (m, n) -> d (n,)`` (deterministic:
callers fix the generator of random methods), and checks one promised property.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Aggregate = Callable[[Tensor], Tensor]
Weigh = Callable[[Tensor], Tensor]


def assert_close(actual: Tensor, expected: Tensor, rtol: float = 1e-7, atol: float = 1e-9,
                 what: str = "") -> None:
    """``|actual − expected| ≤ atol·max(1, max|expected|) + rtol·|expected|`` elementwise."""
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    a = actual.detach().cpu().double()
    e = expected.detach().cpu().double()
    scale = max(float(e.abs().max()), 1.0) if e.numel() else 1.0
    excess = (a - e).abs() - (atol * scale + rtol * e.abs())
    assert bool((excess <= 0).all()), f"{what}: {a.tolist()} != {e.tolist()}"


def assert_gramian_form_matches(aggregate: Aggregate, weigh: Weigh, jacobian: Tensor) -> None:
    """``aggregate(J)`` equals ``weigh(J Jᵀ) @ J`` (the fast engine's route)."""
    gramian = jacobian @ jacobian.T
    gramian = (gramian + gramian.T) / 2
    weights = weigh(gramian)
    assert weights.shape == (jacobian.shape[0],)
    assert_close(aggregate(jacobian), weights @ jacobian, what="Gramian form vs Jacobian form")


def assert_finite(aggregate: Aggregate, jacobian: Tensor) -> None:
    """The update exists, has shape (n,) and holds no NaN/inf."""
    d = aggregate(jacobian)
    assert d.shape == (jacobian.shape[1],)
    assert bool(torch.isfinite(d).all()), f"non-finite update {d} for {jacobian}"


def assert_non_conflicting(aggregate: Aggregate, jacobian: Tensor, atol: float = 1e-8) -> None:
    """``J d ≥ 0``: the update conflicts with no task (up to a scale-aware tolerance)."""
    d = aggregate(jacobian)
    largest = float(jacobian.norm(dim=1).max())
    tol = atol * largest * float(d.norm()) + 1e-12 * largest**2  # rounding when d ≈ 0
    products = jacobian @ d
    assert bool((products >= -tol).all()), f"J d = {products} has a conflict"


def assert_permutation_invariant(aggregate: Aggregate, jacobian: Tensor,
                                 generator: torch.Generator, rtol: float = 1e-6) -> None:
    """Reordering the tasks leaves the update unchanged."""
    d = aggregate(jacobian)
    for _ in range(3):
        perm = torch.randperm(jacobian.shape[0], generator=generator)
        assert_close(aggregate(jacobian[perm]), d, rtol=rtol, atol=rtol,
                     what=f"permutation {perm.tolist()}")


def assert_linear_under_scaling(aggregate: Aggregate, jacobian: Tensor,
                                rtol: float = 1e-6) -> None:
    """``aggregate(c J) = c aggregate(J)`` for positive ``c``."""
    d = aggregate(jacobian)
    for c in (0.01, 3.0, 250.0):
        assert_close(aggregate(c * jacobian), c * d, rtol=rtol, atol=rtol, what=f"scale {c}")


def assert_scale_invariant(aggregate: Aggregate, jacobian: Tensor, rtol: float = 1e-6) -> None:
    """``aggregate(c J) = aggregate(J)`` for positive ``c``."""
    d = aggregate(jacobian)
    for c in (0.01, 3.0, 250.0):
        assert_close(aggregate(c * jacobian), d, rtol=rtol, atol=rtol, what=f"scale {c}")


def assert_weights_permutation_equivariant(weigh: Weigh, gramian: Tensor,
                                           generator: torch.Generator,
                                           rtol: float = 1e-6) -> None:
    """Permuting the tasks permutes the weights: ``w(P G Pᵀ) = P w(G)``."""
    w = weigh(gramian)
    for _ in range(3):
        perm = torch.randperm(gramian.shape[0], generator=generator)
        permuted = gramian[perm][:, perm]
        assert_close(weigh(permuted), w[perm], rtol=rtol, atol=rtol,
                     what=f"permutation {perm.tolist()}")


def assert_preserves_dtype_device(aggregate: Aggregate, weigh: Weigh, jacobian: Tensor) -> None:
    """Updates and weights come back in the input's dtype and on its device."""
    d = aggregate(jacobian)
    assert d.dtype == jacobian.dtype and d.device == jacobian.device
    gramian = jacobian @ jacobian.T
    w = weigh((gramian + gramian.T) / 2)
    assert w.dtype == jacobian.dtype and w.device == jacobian.device
