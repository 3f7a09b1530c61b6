"""Properties shared by every aggregator, checked method by method.

Each test loops over a family of Jacobians (named in the failure message) to keep the
number of test items, and so the suite's run time, small.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import Tensor

from ._asserts import (
    assert_close,
    assert_finite,
    assert_gramian_form_matches,
    assert_linear_under_scaling,
    assert_non_conflicting,
    assert_permutation_invariant,
    assert_preserves_dtype_device,
    assert_scale_invariant,
    assert_weights_permutation_equivariant,
)
from ._methods import METHODS, Method

IGNORE_AGG_WARNINGS = "ignore::polytask.deep.aggregation.AggregationWarning"


def _random(m: int, n: int, seed: int) -> Tensor:
    return torch.randn(m, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# Linearly independent rows (m ≤ n): every method has a unique, well-posed answer.
GENERIC = {f"generic{m}x{n}": _random(m, n, 10 * m + n) for m, n in [(2, 5), (3, 6), (5, 8)]}
# More tasks than dimensions: rank-deficient Gramians.
WIDE = {f"wide{m}x{n}": _random(m, n, 10 * m + n) for m, n in [(4, 2), (6, 3)]}


def _degenerate() -> dict[str, Tensor]:
    base = _random(3, 4, 7)
    zero_row = base.clone()
    zero_row[1] = 0.0
    return {
        "duplicate": torch.cat([base, base[:1]]),
        "antiparallel": torch.stack([base[0], -base[0]]),
        "antiparallel+other": torch.stack([base[0], -base[0], base[1]]),
        "zero-row": zero_row,
        "all-zero": torch.zeros(3, 4, dtype=torch.float64),
        "single-zero": torch.zeros(1, 4, dtype=torch.float64),
    }


DEGENERATE = _degenerate()
ALL = {**GENERIC, **WIDE, **DEGENERATE}

methods = pytest.mark.parametrize("method", METHODS, ids=[m.name for m in METHODS])


def _methods_where(promised: bool, attribute: str) -> pytest.MarkDecorator:
    chosen = [m for m in METHODS if bool(getattr(m, attribute)) == promised]
    return pytest.mark.parametrize("method", chosen, ids=[m.name for m in chosen])


def _cases(names: list[str]) -> list[tuple[str, Tensor]]:
    return [(name, ALL[name]) for name in names]


@methods
@pytest.mark.filterwarnings(IGNORE_AGG_WARNINGS)
@pytest.mark.parametrize("family", ["generic", "wide", "degenerate"])
def test_gramian_form_equals_jacobian_form(method: Method, family: str) -> None:
    cases = {"generic": GENERIC, "wide": WIDE, "degenerate": DEGENERATE}[family]
    for name, jacobian in cases.items():
        try:
            assert_gramian_form_matches(method.aggregate, method.weigh, jacobian)
        except AssertionError as err:
            raise AssertionError(f"{name}: {err}") from err


@methods
@pytest.mark.filterwarnings(IGNORE_AGG_WARNINGS)
def test_finite_on_degenerate_gradients(method: Method) -> None:
    for name, jacobian in _cases(list(DEGENERATE) + list(WIDE)):
        assert_finite(method.aggregate, jacobian)
        weights = method.weigh(jacobian @ jacobian.T)
        assert bool(torch.isfinite(weights).all()), f"{name}: weights {weights}"


@methods
def test_zero_gramian_gives_finite_weights(method: Method) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a zero Gramian is a regular input: no warning
        weights = method.weigh(torch.zeros(4, 4, dtype=torch.float64))
    assert weights.shape == (4,)
    assert bool(torch.isfinite(weights).all())


@_methods_where(True, "non_conflicting")
def test_non_conflicting_when_promised(method: Method) -> None:
    for _, jacobian in _cases(list(GENERIC)):
        assert_non_conflicting(method.aggregate, jacobian)


@pytest.mark.parametrize("method", [m for m in METHODS if m.name in ("MGDA", "UPGrad")],
                         ids=["MGDA", "UPGrad"])
def test_non_conflicting_even_when_degenerate(method: Method) -> None:
    for _, jacobian in _cases(list(WIDE) + list(DEGENERATE)):
        assert_non_conflicting(method.aggregate, jacobian)


@_methods_where(True, "permutation_invariant")  # PCGrad, GradVac: see their own tests
@pytest.mark.filterwarnings(IGNORE_AGG_WARNINGS)
def test_permutation_invariance(method: Method) -> None:
    for _, jacobian in _cases(list(GENERIC) + list(WIDE)):
        assert_permutation_invariant(method.aggregate, jacobian, torch.Generator().manual_seed(0))


@_methods_where(True, "permutation_invariant")
def test_weights_are_permutation_equivariant(method: Method) -> None:
    for _, jacobian in _cases(list(GENERIC)):
        assert_weights_permutation_equivariant(method.weigh, jacobian @ jacobian.T,
                                               torch.Generator().manual_seed(1))


@methods
@pytest.mark.filterwarnings(IGNORE_AGG_WARNINGS)
def test_scaling(method: Method) -> None:
    for _, jacobian in _cases(list(GENERIC) + list(WIDE)):
        if method.scaling == "linear":
            assert_linear_under_scaling(method.aggregate, jacobian)
        else:
            assert_scale_invariant(method.aggregate, jacobian)


@methods
def test_single_task(method: Method) -> None:
    for seed in (0, 1):
        g = _random(1, 5, seed)
        assert_close(method.aggregate(g), method.single(g[0]), rtol=1e-9, what="m = 1")


@methods
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_preserves_dtype_and_device(method: Method, dtype: torch.dtype) -> None:
    assert_preserves_dtype_device(method.aggregate, method.weigh, GENERIC["generic3x6"].to(dtype))


@methods
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_preserves_cuda_device(method: Method) -> None:
    jacobian = GENERIC["generic3x6"].to("cuda")
    assert_preserves_dtype_device(method.aggregate, method.weigh, jacobian)
    assert_close(method.aggregate(jacobian).cpu(), method.aggregate(jacobian.cpu()),
                 rtol=1e-9, what="cuda vs cpu")


@methods
def test_float32_agrees_with_float64(method: Method) -> None:
    jacobian = GENERIC["generic3x6"]
    assert_close(method.aggregate(jacobian.float()).double(), method.aggregate(jacobian),
                 rtol=1e-4, atol=1e-4, what="float32 vs float64")
