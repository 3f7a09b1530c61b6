"""Random loss weighting (Lin, Ye, Zhang & Tsang, TMLR 2022)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, get_args

import torch
from torch import Tensor

from ._base import LossWeighting

__all__ = ["RLW", "RLWDistribution", "sample_rlw_weights"]

RLWDistribution = Literal["softmax_normal", "softmax_uniform", "dirichlet"]
"""How RLW draws the weights on the simplex."""

_DISTRIBUTIONS: tuple[str, ...] = get_args(RLWDistribution)


def sample_rlw_weights(
    n_tasks: int, distribution: RLWDistribution, generator: torch.Generator
) -> Tensor:
    """Draw one random point of the simplex, scaled to sum to ``n_tasks``.

    * ``"softmax_normal"``: ``softmax(ε)``, ``ε ~ N(0, I)`` (the paper's default);
    * ``"softmax_uniform"``: ``softmax(u)``, ``u ~ U(0, 1)^m``;
    * ``"dirichlet"``: ``Dirichlet(1, …, 1)``, uniform on the simplex, drawn as
      normalised standard exponential variables.

    Parameters
    ----------
    n_tasks : int
        The number of tasks ``m``.
    distribution : {"softmax_normal", "softmax_uniform", "dirichlet"}
        The sampling distribution.
    generator : torch.Generator
        The only source of randomness (a CPU generator).

    Returns
    -------
    Tensor of shape (n_tasks,)
        Positive weights summing to ``n_tasks`` (``m`` times a simplex point), on the
        generator's device.

    Examples
    --------
    >>> import torch
    >>> w = sample_rlw_weights(3, "dirichlet", torch.Generator().manual_seed(0))
    >>> w.shape, round(float(w.sum()), 4), bool((w > 0).all())
    (torch.Size([3]), 3.0, True)
    """
    device = generator.device
    if distribution == "softmax_normal":
        eps = torch.randn(n_tasks, generator=generator, device=device)
        point = torch.softmax(eps, dim=0)
    elif distribution == "softmax_uniform":
        u = torch.rand(n_tasks, generator=generator, device=device)
        point = torch.softmax(u, dim=0)
    elif distribution == "dirichlet":
        e = torch.empty(n_tasks, device=device).exponential_(1.0, generator=generator)
        point = e / e.sum()
    else:
        raise ValueError(f"distribution must be one of {_DISTRIBUTIONS}, got {distribution!r}")
    return n_tasks * point


class RLW(LossWeighting):
    """Random loss weighting (RLW): new random weights at every optimizer step.

    .. math:: \\mathcal{L}_t = \\sum_i w_{t,i} L_i, \\qquad w_t = m \\, \\lambda_t,
              \\quad \\lambda_t \\sim p(\\lambda) \\text{ on the simplex}.

    The paper's weights ``λ_t`` sum to 1; here they are multiplied by ``m`` (so they sum
    to ``m`` and average 1, like equal weighting and the other methods): a constant
    factor, equivalent to scaling the learning rate by ``m``.

    The weights used at a step are drawn beforehand: by the constructor (first step)
    and by each ``update`` (next step). So ``forward`` and ``weights`` are
    deterministic, and logging the weights consumes no randomness.

    Randomness comes only from ``generator``. Its state is saved in ``state_dict``
    (through ``get_extra_state``), and loading the state dict restores it, so a resumed
    run draws exactly the weights of an uninterrupted one. ``reset`` restores the
    generator state the instance started from and redraws the first weights, replaying
    the same sequence.

    Parameters
    ----------
    tasks : int or sequence of str
        The number of tasks, or their names in the order of the loss vector.
    distribution : {"softmax_normal", "softmax_uniform", "dirichlet"}, default="softmax_normal"
        How the weights are drawn, see :func:`sample_rlw_weights`.
    generator : torch.Generator or int or None, default=None
        The random source. An int seeds a new CPU generator; ``None`` seeds a new one
        from fresh entropy (not reproducible); a ``torch.Generator`` is used as is and
        advanced in place (and overwritten by ``load_state_dict``).

    Attributes
    ----------
    current_weights : Tensor of shape (n_tasks,)
        The weights of the next step (buffer).
    num_updates : Tensor
        Number of ``update`` calls (0-dim int64 buffer).

    References
    ----------
    B. Lin, F. Ye, Y. Zhang and I. W. Tsang, "Reasonable effectiveness of random
    weighting: a litmus test for multi-task learning", TMLR 2022.

    Examples
    --------
    >>> import torch
    >>> rlw = RLW(3, generator=0)
    >>> losses = torch.tensor([1.0, 2.0, 3.0])
    >>> w = rlw.weights(losses)
    >>> round(float(w.sum()), 4), bool((w > 0).all())
    (3.0, True)
    >>> rlw.update(losses)                      # draws the next step's weights
    >>> bool(torch.equal(w, rlw.weights(losses)))
    False
    """

    current_weights: Tensor
    num_updates: Tensor

    def __init__(
        self,
        tasks: int | Sequence[str],
        *,
        distribution: RLWDistribution = "softmax_normal",
        generator: torch.Generator | int | None = None,
    ) -> None:
        super().__init__(tasks)
        if distribution not in _DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {_DISTRIBUTIONS}, got {distribution!r}")
        self.distribution: RLWDistribution = distribution
        if isinstance(generator, torch.Generator):
            gen = generator
        elif generator is None:
            gen = torch.Generator()
            gen.seed()
        elif isinstance(generator, int) and not isinstance(generator, bool):
            gen = torch.Generator().manual_seed(generator)
        else:
            raise TypeError(
                "generator must be a torch.Generator, an int seed or None, "
                f"got {type(generator).__name__}"
            )
        self._generator = gen
        self._initial_generator_state = gen.get_state()
        self.register_buffer("current_weights", torch.ones(self.n_tasks))
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))
        self._draw()

    def _draw(self) -> None:
        w = sample_rlw_weights(self.n_tasks, self.distribution, self._generator)
        self.current_weights.copy_(w)

    def _weights(self, losses: Tensor, gramian: Tensor | None) -> Tensor:
        return self.current_weights.to(losses)

    def _update(self, losses: Tensor, gramian: Tensor | None, losses_after: Tensor | None) -> None:
        self._draw()
        self.num_updates += 1

    def reset(self) -> None:
        """Rewind the generator to its initial state and redraw the first weights."""
        self._generator.set_state(self._initial_generator_state)
        self.num_updates.zero_()
        with torch.no_grad():
            self._draw()

    def get_extra_state(self) -> dict[str, Any]:
        """Return the generator states (saved by ``state_dict``)."""
        return {
            "generator_state": self._generator.get_state(),
            "initial_generator_state": self._initial_generator_state.clone(),
        }

    def set_extra_state(self, state: Any) -> None:
        """Restore the generator states saved by :meth:`get_extra_state`."""
        if not isinstance(state, dict) or "generator_state" not in state:
            raise ValueError("RLW state must be a dict with a 'generator_state' entry")
        self._generator.set_state(state["generator_state"])
        if "initial_generator_state" in state:
            self._initial_generator_state = state["initial_generator_state"].clone()

    def extra_repr(self) -> str:
        return f"n_tasks={self.n_tasks}, distribution={self.distribution!r}"
