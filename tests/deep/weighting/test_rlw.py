"""RLW (Lin, Ye, Zhang & Tsang, 2022)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from polytask.deep.weighting import RLW, sample_rlw_weights

DISTRIBUTIONS = ["softmax_normal", "softmax_uniform", "dirichlet"]


def _sequence(rlw: RLW, steps: int) -> torch.Tensor:
    out = []
    losses = torch.ones(rlw.n_tasks)
    for _ in range(steps):
        out.append(rlw.weights(losses))
        rlw.update(losses)
    return torch.stack(out)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_reproducible_with_a_seed_and_on_the_scaled_simplex(distribution: str) -> None:
    a = _sequence(RLW(4, distribution=distribution, generator=7), 20)  # type: ignore[arg-type]
    b = _sequence(
        RLW(
            4,
            distribution=distribution,  # type: ignore[arg-type]
            generator=torch.Generator().manual_seed(7),
        ),
        20,
    )
    c = _sequence(RLW(4, distribution=distribution, generator=8), 20)  # type: ignore[arg-type]
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert (a > 0).all()
    torch.testing.assert_close(a.sum(dim=1), torch.full((20,), 4.0))
    assert len({tuple(row.tolist()) for row in a}) == 20  # a new draw every step


def test_softmax_normal_is_m_times_softmax_of_standard_normal_draws() -> None:
    gen = torch.Generator().manual_seed(3)
    expected = [3 * torch.softmax(torch.randn(3, generator=gen), dim=0) for _ in range(5)]
    got = _sequence(RLW(3, generator=3), 5)
    torch.testing.assert_close(got, torch.stack(expected))


def test_dirichlet_marginal_is_beta_one_m_minus_one() -> None:
    # Dirichlet(1, ..., 1): each coordinate of the simplex point is Beta(1, m - 1).
    m = 4
    gen = torch.Generator().manual_seed(0)
    draws = torch.stack([sample_rlw_weights(m, "dirichlet", gen) for _ in range(2000)]) / m
    for j in range(m):
        result = stats.kstest(draws[:, j].numpy(), stats.beta(1, m - 1).cdf)
        assert result.pvalue > 1e-3


def test_softmax_normal_mean_weight_is_one_by_symmetry() -> None:
    gen = torch.Generator().manual_seed(1)
    draws = torch.stack([sample_rlw_weights(3, "softmax_normal", gen) for _ in range(3000)])
    np.testing.assert_allclose(draws.mean(dim=0).numpy(), np.ones(3), atol=0.05)


def test_objective_uses_the_drawn_weights() -> None:
    rlw = RLW(3, generator=0)
    losses = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    total = rlw(losses)
    w = rlw.weights(losses.detach())
    assert float(total.detach()) == pytest.approx(float((w * losses.detach()).sum()))
    assert torch.equal(rlw.weights(losses.detach()), w)  # forward and weights draw nothing


def test_user_generator_is_advanced_and_reset_replays() -> None:
    gen = torch.Generator().manual_seed(11)
    rlw = RLW(2, generator=gen)
    first = _sequence(rlw, 6)
    assert not torch.equal(gen.get_state(), torch.Generator().manual_seed(11).get_state())
    rlw.reset()
    torch.testing.assert_close(_sequence(rlw, 6), first)


def test_unseeded_instances_differ() -> None:
    assert not torch.equal(_sequence(RLW(5), 3), _sequence(RLW(5), 3))


def test_bad_extra_state_and_distribution_raise() -> None:
    rlw = RLW(2, generator=0)
    state = rlw.state_dict()
    state["_extra_state"] = {"wrong": 1}
    with pytest.raises(ValueError, match="generator_state"):
        rlw.load_state_dict(state)
    with pytest.raises(ValueError, match="distribution must be one of"):
        sample_rlw_weights(2, "beta", torch.Generator())  # type: ignore[arg-type]
