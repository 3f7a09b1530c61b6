"""Helpers shared by the mixture-of-experts architectures (MMoE, CGC, PLE)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class LinearGate(nn.Module):
    """Default gate: a linear map of the flattened input to one logit per expert.

    Parameters
    ----------
    in_features : int
        Number of input features after flattening everything but the batch dimension.
    n_experts : int
        Number of experts the gate weighs.
    label : str
        How error messages name this gate.
    """

    def __init__(self, in_features: int, n_experts: int, label: str) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, n_experts)
        self.label = label

    def forward(self, x: Tensor) -> Tensor:
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != self.linear.in_features:
            raise ValueError(
                f"{self.label}: input has {flat.shape[1]} features once flattened but the "
                f"gate expects {self.linear.in_features} (gate_input_dim)"
            )
        out: Tensor = self.linear(flat)
        return out


def stack_outputs(outputs: Sequence[Tensor], labels: Sequence[str]) -> Tensor:
    """Stack expert outputs into ``(batch, n_experts, ...)`` after checking their shapes."""
    shape = tuple(outputs[0].shape)
    for out, label in zip(outputs, labels, strict=True):
        if tuple(out.shape) != shape:
            raise ValueError(
                f"{label} returns shape {tuple(out.shape)} but {labels[0]} returns {shape}; "
                "all experts mixed by one gate must return the same shape"
            )
    return torch.stack(list(outputs), dim=1)


def gate_softmax(gate: nn.Module, x: Tensor, n_experts: int, label: str) -> Tensor:
    """Apply a gate and return softmax weights ``(batch, n_experts)``."""
    logits = gate(x)
    if not isinstance(logits, Tensor) or logits.ndim != 2 or logits.shape[1] != n_experts:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"{label} must return logits of shape (batch, {n_experts}), got {shape}")
    return torch.softmax(logits, dim=1)


def mix(weights: Tensor, stacked: Tensor) -> Tensor:
    """Return ``sum_i weights[:, i] * stacked[:, i]`` for ``stacked`` ``(batch, n, ...)``."""
    expanded = weights.reshape(*weights.shape, *([1] * (stacked.ndim - 2)))
    return (expanded * stacked).sum(dim=1)
