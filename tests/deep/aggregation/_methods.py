"""The catalogue of methods under test, with the properties each one promises."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from polytask.deep.aggregation import (
    IMTLG,
    MGDA,
    AlignedMTL,
    AlignedMTLWeighting,
    CAGrad,
    CAGradWeighting,
    GradVac,
    GradVacState,
    GradVacWeighting,
    IMTLGWeighting,
    Mean,
    MeanWeighting,
    MGDAWeighting,
    NashMTL,
    NashMTLWeighting,
    PCGrad,
    PCGradWeighting,
    Sum,
    SumWeighting,
    UPGrad,
    UPGradWeighting,
)


@dataclass(frozen=True)
class Method:
    """A method with deterministic ``aggregate``/``weigh`` and its promised properties."""

    name: str
    aggregate: Callable[[Tensor], Tensor]
    weigh: Callable[[Tensor], Tensor]
    scaling: Literal["linear", "invariant"]
    permutation_invariant: bool
    non_conflicting: bool
    single: Callable[[Tensor], Tensor]  # expected update for a single gradient g

    def __repr__(self) -> str:
        return self.name


def _seeded() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


def _gradvac_state(m: int) -> GradVacState:
    # A non-trivial state: every target at 0.3 (fresh targets of 0 would mimic PCGrad).
    return GradVacState(torch.full((m, m), 0.3, dtype=torch.float64))


def _gradvac() -> tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]:
    aggregator, weighting = GradVac(beta=0.3), GradVacWeighting(beta=0.3)

    def aggregate(jacobian: Tensor) -> Tensor:
        return aggregator(jacobian, _gradvac_state(jacobian.shape[0]), generator=_seeded())[0]

    def weigh(gramian: Tensor) -> Tensor:
        return weighting(gramian, _gradvac_state(gramian.shape[0]), generator=_seeded())[0]

    return aggregate, weigh


def _identity(g: Tensor) -> Tensor:
    return g


def _unit(g: Tensor) -> Tensor:
    return g / g.norm()


_gv_aggregate, _gv_weigh = _gradvac()

METHODS: list[Method] = [
    Method("Mean", Mean(), MeanWeighting(), "linear", True, False, _identity),
    Method("Sum", Sum(), SumWeighting(), "linear", True, False, _identity),
    Method("MGDA", MGDA(), MGDAWeighting(), "linear", True, True, _identity),
    Method("MGDA-l2", MGDA("l2"), MGDAWeighting("l2"), "invariant", True, True, _unit),
    Method(
        "PCGrad",
        lambda j: PCGrad()(j, generator=_seeded()),
        lambda g: PCGradWeighting()(g, generator=_seeded()),
        "linear", False, False, _identity,
    ),
    Method("GradVac", _gv_aggregate, _gv_weigh, "linear", False, False, _identity),
    Method("CAGrad", CAGrad(c=0.4), CAGradWeighting(c=0.4), "linear", True, False,
           lambda g: g * (1.4 / 1.16)),
    Method("CAGrad-norescale", CAGrad(c=0.8, rescale=False),
           CAGradWeighting(c=0.8, rescale=False), "linear", True, False, lambda g: 1.8 * g),
    Method("IMTLG", IMTLG(), IMTLGWeighting(), "linear", True, False, _identity),
    Method("NashMTL", NashMTL(), NashMTLWeighting(), "invariant", True, True, _unit),
    Method("NashMTL-normalize", NashMTL(normalize=True), NashMTLWeighting(normalize=True),
           "linear", True, True, _identity),
    Method("AlignedMTL", AlignedMTL(), AlignedMTLWeighting(), "linear", True, False, _identity),
    Method("AlignedMTL-rmse", AlignedMTL("rmse"), AlignedMTLWeighting("rmse"), "linear", True,
           False, _identity),
    Method("UPGrad", UPGrad(), UPGradWeighting(), "linear", True, True, _identity),
]
