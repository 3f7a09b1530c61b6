"""PCGrad: Gramian-form coefficients against a direct implementation on the gradients."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from polytask.deep.aggregation import PCGrad, PCGradWeighting, Sum
from polytask.deep.aggregation._pcgrad import pcgrad_coefficients

from ._asserts import assert_close


def direct_pcgrad(jacobian: np.ndarray, orders: list[list[int]]) -> list[np.ndarray]:
    """Yu et al.'s procedure written on the gradients themselves."""
    projected = []
    for i, order in enumerate(orders):
        g = jacobian[i].copy()
        for j in order:
            conflict = g @ jacobian[j]
            if conflict < 0:
                g = g - conflict / (jacobian[j] @ jacobian[j]) * jacobian[j]
        projected.append(g)
    return projected


def _conflicting(m: int, n: int, seed: int) -> np.ndarray:
    # Centred random gradients: many pairs conflict.
    rng = np.random.default_rng(seed)
    jacobian = rng.standard_normal((m, n))
    return jacobian - 0.5 * jacobian.mean(axis=0)


def _random_orders(m: int, rng: np.random.Generator) -> list[list[int]]:
    return [list(rng.permutation([j for j in range(m) if j != i])) for i in range(m)]


@pytest.mark.parametrize(("m", "n"), [(2, 3), (3, 4), (5, 3), (6, 8)])
def test_coefficients_match_direct_projection(m: int, n: int) -> None:
    rng = np.random.default_rng(m * n)
    for _ in range(5):
        jacobian = _conflicting(m, n, int(rng.integers(1000)))
        orders = _random_orders(m, rng)
        coefficients = pcgrad_coefficients(jacobian @ jacobian.T, orders)
        expected = np.array(direct_pcgrad(jacobian, orders))
        np.testing.assert_allclose(coefficients @ jacobian, expected, atol=1e-10)


def test_no_conflict_with_the_last_projection() -> None:
    # After its last projection step, g_i' never conflicts with that g_j: either it was
    # projected onto g_j's normal plane (dot 0) or it did not conflict then.
    rng = np.random.default_rng(11)
    for _ in range(20):
        jacobian = _conflicting(4, 5, int(rng.integers(1000)))
        orders = _random_orders(4, rng)
        projected = pcgrad_coefficients(jacobian @ jacobian.T, orders) @ jacobian
        for i, order in enumerate(orders):
            assert projected[i] @ jacobian[order[-1]] >= -1e-10


def test_two_tasks_projected_gradients_do_not_conflict() -> None:
    jacobian = torch.tensor([[1.0, 0.2], [-1.0, 1.0]], dtype=torch.float64)
    coefficients = pcgrad_coefficients((jacobian @ jacobian.T).numpy(), [[1], [0]])
    projected = torch.from_numpy(coefficients) @ jacobian
    assert float(projected[0] @ jacobian[1]) == pytest.approx(0.0, abs=1e-12)
    assert float(projected[1] @ jacobian[0]) == pytest.approx(0.0, abs=1e-12)


def test_public_output_is_one_of_the_orderings() -> None:
    # Independent of how orders are drawn: the result must be PCGrad for SOME orders.
    jacobian = _conflicting(4, 3, 5)
    candidates = [
        np.sum(direct_pcgrad(jacobian, [list(p) for p in perms]), axis=0)
        for perms in itertools.product(
            *[itertools.permutations([j for j in range(4) if j != i]) for i in range(4)]
        )
    ]
    for seed in range(5):
        d = PCGrad()(torch.from_numpy(jacobian), generator=torch.Generator().manual_seed(seed))
        distances = [float(np.abs(d.numpy() - c).max()) for c in candidates]
        assert min(distances) < 1e-10


def test_deterministic_given_the_generator() -> None:
    jacobian = torch.from_numpy(_conflicting(5, 4, 2))
    first = PCGrad(generator=torch.Generator().manual_seed(3))(jacobian)
    again = PCGrad(generator=torch.Generator().manual_seed(3))(jacobian)
    per_call = PCGrad(generator=torch.Generator().manual_seed(99))(
        jacobian, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first, again)
    assert torch.equal(first, per_call)
    outputs = {tuple(PCGrad()(jacobian, generator=torch.Generator().manual_seed(s)).tolist())
               for s in range(10)}
    assert len(outputs) > 1  # the order matters for these gradients: randomness is used


def test_two_tasks_order_free() -> None:
    jacobian = torch.from_numpy(_conflicting(2, 4, 8))
    d = PCGrad()(jacobian)
    assert_close(PCGrad()(jacobian.flip(0)), d, what="swapped tasks")


def test_without_conflict_equals_sum() -> None:
    jacobian = torch.tensor([[1.0, 0.5, 0.0], [0.2, 1.0, 0.3], [0.0, 0.1, 2.0]])
    assert_close(PCGrad()(jacobian), Sum()(jacobian), what="no conflict")


def test_generator_type_is_checked() -> None:
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator"):
        PCGradWeighting(generator=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator"):
        PCGrad()(torch.eye(2), generator="seed")  # type: ignore[arg-type]
