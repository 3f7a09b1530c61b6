"""Small models shared by the relatedness tests (reached through fixtures, since test
modules cannot import one another under ``--import-mode=importlib``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
import torch
from torch import nn

from polytask.deep.architectures import SharedBottom


def _linear_model(n_features: int, task_names: Sequence[str], weight: torch.Tensor | None = None,
                  dtype: torch.dtype = torch.float64) -> SharedBottom:
    """``y_t = x · w`` for every task: one shared weight vector, identity heads."""
    model = SharedBottom(
        nn.Linear(n_features, 1, bias=False), {t: nn.Identity() for t in task_names}
    ).to(dtype)
    encoder = model.encoder
    assert isinstance(encoder, nn.Linear)
    with torch.no_grad():
        if weight is None:
            encoder.weight.zero_()
        else:
            encoder.weight.copy_(weight.reshape(1, -1))
    return model


@pytest.fixture
def linear_model() -> Callable[..., SharedBottom]:
    """Factory of the shared linear model ``y_t = x · w`` (float64, ``w = 0`` by default)."""
    return _linear_model
