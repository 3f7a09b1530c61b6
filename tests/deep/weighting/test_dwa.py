"""DWA (Liu, Johns & Davison, 2019)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from polytask.deep.weighting import DWA, dwa_weights


def reference_weights(history: list[list[float]], temperature: float, m: int = 2) -> list[float]:
    """The DWA formula written out independently, for epoch len(history) + 1."""
    if len(history) < 2:
        return [1.0] * m
    r = [a / b for a, b in zip(history[-1], history[-2], strict=True)]
    e = [math.exp(ri / temperature) for ri in r]
    return [m * ei / sum(e) for ei in e]


@pytest.mark.parametrize("temperature", [0.5, 2.0, 10.0])
def test_weights_follow_the_formula_over_a_small_sequence(temperature: float) -> None:
    # four epochs of three steps each; the epoch loss is the mean over its steps
    steps = np.array(
        [
            [[3.0, 1.0], [2.8, 1.1], [2.6, 0.9]],
            [[2.0, 1.0], [1.9, 1.0], [1.7, 0.8]],
            [[1.2, 0.95], [1.0, 0.9], [0.9, 0.85]],
            [[0.8, 0.5], [0.7, 0.45], [0.7, 0.4]],
        ]
    )
    dwa = DWA(2, temperature=temperature).double()
    history: list[list[float]] = []
    for epoch in steps:
        for losses in epoch:
            w = dwa.weights(torch.from_numpy(losses))
            np.testing.assert_allclose(w.numpy(), reference_weights(history, temperature))
            dwa.update(torch.from_numpy(losses))
        dwa.update_epoch()
        history.append(list(epoch.mean(axis=0)))
    assert len(history) == 4
    np.testing.assert_allclose(
        dwa.weights(torch.ones(2, dtype=torch.float64)).numpy(),
        reference_weights(history, temperature),
    )


def test_first_two_epochs_are_equal_weights_then_stalled_task_gains() -> None:
    dwa = DWA(["fast", "stalled"])
    for mean in ([4.0, 4.0], [2.0, 4.0]):
        assert dwa.weights(torch.ones(2)).tolist() == [1.0, 1.0]
        dwa.update_epoch(torch.tensor(mean))
    w = dwa.weights(torch.ones(2))
    assert w[1] > 1.0 > w[0]
    assert float(w.sum()) == pytest.approx(2.0)


def test_explicit_mean_losses_replace_the_accumulated_mean() -> None:
    a, b = DWA(2), DWA(2)
    for epoch in ([1.0, 2.0], [0.5, 1.9], [0.4, 1.0]):
        a.update(torch.tensor([100.0, 100.0]))  # accumulated, then overridden
        a.update_epoch(torch.tensor(epoch))
        b.update_epoch(torch.tensor(epoch))
        assert int(a.epoch_num_steps) == 0
    assert torch.equal(a.weights(torch.ones(2)), b.weights(torch.ones(2)))
    assert torch.equal(a.loss_history, b.loss_history)


def test_high_temperature_tends_to_equal_weights() -> None:
    w = dwa_weights(torch.tensor([1.0, 0.1, 3.0]), torch.tensor([2.0, 1.0, 1.0]), 1e6)
    torch.testing.assert_close(w, torch.ones(3))


def test_update_epoch_without_steps_or_with_bad_means_raises() -> None:
    dwa = DWA(["a", "b"])
    with pytest.raises(ValueError, match="update_epoch\\(\\) got no mean_losses"):
        dwa.update_epoch()
    with pytest.raises(ValueError, match=r"mean_losses\[0\] for task 0 \('a'\).*must be > 0"):
        dwa.update_epoch(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"mean_losses\[1\] for task 1 \('b'\) is nan"):
        dwa.update_epoch(torch.tensor([1.0, float("nan")]))
    dwa.update(torch.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match=r"mean epoch losses\[1\] for task 1 \('b'\)"):
        dwa.update_epoch()
    assert int(dwa.num_epochs) == 0
