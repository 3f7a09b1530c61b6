"""Input validation, immutability and the generic Gramian aggregator."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from polytask.deep.aggregation import (
    IMTLG,
    MGDA,
    AlignedMTL,
    CAGrad,
    GradVac,
    GradVacWeighting,
    GramianAggregator,
    Mean,
    MeanWeighting,
    MGDAWeighting,
    NashMTL,
    PCGrad,
    Sum,
    UPGrad,
    Weighting,
    compute_gramian,
)

from ._asserts import assert_close
from ._methods import METHODS

_GRADVAC = GradVacWeighting()
_GRADVAC_AGG = GradVac()

# Callables that take the raw input, for error checks (GradVac gets a valid state).
WEIGHINGS: list[tuple[str, Callable[[object], Tensor]]] = [
    (m.name, m.weigh) for m in METHODS if m.name != "GradVac"  # type: ignore[misc]
] + [("GradVac", lambda g: _GRADVAC(g, _GRADVAC.init_state(2))[0])]  # type: ignore[arg-type]
AGGREGATES: list[tuple[str, Callable[[object], Tensor]]] = [
    (m.name, m.aggregate) for m in METHODS if m.name != "GradVac"  # type: ignore[misc]
] + [("GradVac", lambda j: _GRADVAC_AGG(j, _GRADVAC_AGG.init_state(2))[0])]  # type: ignore[arg-type]

nan_gramian = torch.eye(2)
nan_gramian[0, 1] = nan_gramian[1, 0] = float("nan")

BAD_GRAMIANS = [
    ("list", [[1.0, 0.0], [0.0, 1.0]], TypeError, "gramian must be a torch.Tensor"),
    ("integer", torch.eye(2, dtype=torch.int64), TypeError, "floating-point dtype"),
    ("1-D", torch.ones(2), ValueError, "gramian must be a 2-D tensor"),
    ("3-D", torch.ones(2, 2, 2), ValueError, "gramian must be a 2-D tensor"),
    ("non-square", torch.ones(2, 3), ValueError, "gramian must be square"),
    ("empty", torch.ones(0, 0), ValueError, "at least one task"),
    ("NaN", nan_gramian, ValueError, "gramian contains NaN"),
    ("inf", torch.tensor([[float("inf"), 0.0], [0.0, 1.0]]), ValueError, "NaN or infinite"),
    ("asymmetric", torch.tensor([[1.0, 0.5], [0.0, 1.0]]), ValueError, "must be symmetric"),
    ("negative diagonal", torch.tensor([[1.0, 0.0], [0.0, -1.0]]), ValueError,
     "positive semi-definite"),
]

BAD_JACOBIANS = [
    ("tuple", ((1.0, 0.0), (0.0, 1.0)), TypeError, "jacobian must be a torch.Tensor"),
    ("integer", torch.ones(2, 2, dtype=torch.int32), TypeError, "floating-point dtype"),
    ("1-D", torch.ones(3), ValueError, "jacobian must be a 2-D tensor"),
    ("no column", torch.ones(2, 0), ValueError, "at least one column"),
    ("NaN", torch.tensor([[1.0, float("nan")], [0.0, 1.0]]), ValueError,
     "jacobian contains NaN"),
]


@pytest.mark.parametrize(("name", "weigh"), WEIGHINGS, ids=[n for n, _ in WEIGHINGS])
def test_gramian_errors(name: str, weigh: Callable[[object], Tensor]) -> None:
    for case, value, error, match in BAD_GRAMIANS:
        if name == "GradVac" and case in ("non-square", "empty", "3-D", "1-D"):
            continue  # the state (2 tasks) is checked after the shape; covered below
        with pytest.raises(error, match=match):
            weigh(value)


@pytest.mark.parametrize(("name", "aggregate"), AGGREGATES, ids=[n for n, _ in AGGREGATES])
def test_jacobian_errors(name: str, aggregate: Callable[[object], Tensor]) -> None:
    for _, value, error, match in BAD_JACOBIANS:
        with pytest.raises(error, match=match):
            aggregate(value)


def test_gradvac_shape_errors_come_first() -> None:
    with pytest.raises(ValueError, match="gramian must be square"):
        _GRADVAC(torch.ones(2, 3), _GRADVAC.init_state(2))


def test_float32_gramian_rounding_is_not_asymmetry() -> None:
    jacobian = torch.randn(4, 10_000, generator=torch.Generator().manual_seed(0))
    gramian = jacobian @ jacobian.T  # float32 matmul: symmetric only up to rounding
    assert MGDAWeighting()(gramian).shape == (4,)


AGGREGATORS = [Mean(), Sum(), MGDA("l2"), PCGrad(), GradVac(0.2), CAGrad(0.3), IMTLG(),
               NashMTL(), AlignedMTL("median"), UPGrad()]


@pytest.mark.parametrize("aggregator", AGGREGATORS, ids=lambda a: type(a).__name__)
def test_aggregators_are_immutable(aggregator: object) -> None:
    with pytest.raises(AttributeError, match="is immutable"):
        aggregator._weighting = MeanWeighting()  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="is immutable"):
        aggregator.weighting._extra = 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(("aggregator", "text"), [
    (MGDA("l2"), "MGDA(normalization='l2')"),
    (CAGrad(0.3, rescale=False), "CAGrad(c=0.3, rescale=False)"),
    (AlignedMTL("rmse"), "AlignedMTL(scale_mode='rmse', pref_vector=None)"),
    (GradVac(0.2), "GradVac(beta=0.2, generator=None)"),
    (NashMTL(), "NashMTL(normalize=False)"),
    (UPGrad(), "UPGrad()"),
])
def test_repr_shows_hyperparameters(aggregator: object, text: str) -> None:
    assert repr(aggregator) == text


def test_generic_gramian_aggregator() -> None:
    class Favourite(Weighting):
        """All the weight on the task with the largest gradient."""

        def __init__(self) -> None:
            self._freeze()

        def _solve(self, gramian, eps):  # type: ignore[no-untyped-def]
            weights = 0.0 * gramian[0]
            weights[gramian.diagonal().argmax()] = 1.0
            return weights

    jacobian = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    assert_close(GramianAggregator(Favourite())(jacobian), jacobian[1], what="custom")
    with pytest.raises(TypeError, match="weighting must be a Weighting"):
        GramianAggregator(lambda g: g.sum(0))  # type: ignore[type-var]


def test_compute_gramian_is_symmetric_and_exact() -> None:
    jacobian = torch.randn(3, 50, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    gramian = compute_gramian(jacobian)
    assert torch.equal(gramian, gramian.T)
    assert_close(gramian, jacobian @ jacobian.T, rtol=1e-12, what="gramian")


def test_weights_do_not_track_gradients() -> None:
    jacobian = torch.randn(3, 4, generator=torch.Generator().manual_seed(3), requires_grad=True)
    d = UPGrad()(jacobian)
    assert not d.requires_grad
