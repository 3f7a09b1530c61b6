"""Random visiting orders for the projection methods (PCGrad, GradVac)."""

from __future__ import annotations

import torch


def check_generator(generator: object, name: str = "generator") -> torch.Generator | None:
    """Return ``generator`` if it is ``None`` or a :class:`torch.Generator`, else raise."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"{name} must be a torch.Generator or None, got {type(generator).__name__}."
        )
    return generator


def other_task_orders(m: int, generator: torch.Generator | None) -> list[list[int]]:
    """For each task ``i``, the other tasks ``j ≠ i`` in a uniformly random order.

    Draws ``m`` permutations of ``m − 1`` elements with ``torch.randperm`` from
    ``generator`` (torch's default generator when ``None``), in task order.
    """
    orders: list[list[int]] = []
    for i in range(m):
        if m == 1:
            orders.append([])
            continue
        device = generator.device if generator is not None else torch.device("cpu")
        perm = torch.randperm(m - 1, generator=generator, device=device).tolist()
        others = [j for j in range(m) if j != i]
        orders.append([others[k] for k in perm])
    return orders
