"""How a method plugs into :func:`polytask.deep.backward.mtl_backward` (private).

Four kinds of objects are accepted, told apart once per call:

``"loss"``
    A :class:`polytask.deep.weighting.LossWeighting`: ``method(losses, gramian=G)`` is
    the scalar to backpropagate; the Gramian is computed only when the weighting
    declares ``requires_grad_norms`` (or when asked for).
``"stateful"``
    A Gramian weighting with explicit state (GradVac): ``init_state(m)`` and
    ``method(G, state) -> (weights, new_state)``.
``"gramian"``
    Any callable ``G (m, m) -> weights (m,)``: every weighting of
    :mod:`polytask.deep.aggregation`, or a plain function.
``"jacobian"``
    An :class:`polytask.deep.aggregation.Aggregator` that is not built on a Gramian
    weighting: it needs the explicit Jacobian, ``J (m, n) -> d (n,)``.

A :class:`~polytask.deep.aggregation.GramianAggregator` (``MGDA()``, ``UPGrad()``, ...)
or ``GradVac()`` is replaced by its ``weighting``, so the fast Gramian path is used.
A Gramian weighting whose ``__call__`` takes a ``losses`` keyword (MGDA's loss
normalizations) receives the detached losses; one that takes ``generator`` (PCGrad,
GradVac) receives the ``generator`` passed to ``mtl_backward``, if any.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import torch
from torch import Tensor

MethodKind = Literal["loss", "stateful", "gramian", "jacobian"]


@runtime_checkable
class GramianWeightingLike(Protocol):
    """A callable mapping a Gramian ``(m, m)`` to task weights ``(m,)``.

    Any function works; :mod:`polytask.deep.aggregation` weightings all qualify.

    Examples
    --------
    >>> import torch
    >>> def inverse_norm(gramian):              # weight each task by 1 / ||g_i||
    ...     return gramian.diagonal().clamp_min(1e-12).rsqrt()
    >>> isinstance(inverse_norm, GramianWeightingLike)
    True
    >>> inverse_norm(torch.diag(torch.tensor([4.0, 1.0]))).tolist()
    [0.5, 1.0]
    """

    def __call__(self, gramian: Tensor, /) -> Tensor:
        """Weights of shape ``(m,)`` such that the update is ``d = Jᵀ w``."""


@runtime_checkable
class StatefulGramianWeighting(Protocol):
    """A Gramian weighting whose state is passed explicitly (optax style).

    :func:`~polytask.deep.backward.mtl_backward` creates the state with ``init_state``
    when none is given and returns the next one in ``BackwardResult.state``.

    Examples
    --------
    >>> from polytask.deep.aggregation import GradVacWeighting
    >>> isinstance(GradVacWeighting(), StatefulGramianWeighting)
    True
    """

    def init_state(self, n_tasks: int) -> Any:
        """Fresh state for ``n_tasks`` tasks."""

    def __call__(self, gramian: Tensor, state: Any, /) -> tuple[Tensor, Any]:
        """``(weights (m,), new_state)`` for a Gramian ``(m, m)``."""


@dataclass(frozen=True)
class ResolvedMethod:
    """A method with its kind and the keywords its ``__call__`` accepts."""

    kind: MethodKind
    fn: Any
    takes_losses: bool = False
    takes_generator: bool = False

    @property
    def name(self) -> str:
        """Class name of the method, for messages."""
        return type(self.fn).__name__


def _keywords(fn: Any) -> set[str]:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature
        return set()
    return {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def resolve_method(method: object) -> ResolvedMethod:
    """Classify ``method``; raise ``TypeError`` if it is none of the four kinds."""
    from .aggregation import Aggregator, GradVac
    from .weighting import LossWeighting

    if isinstance(method, LossWeighting):
        return ResolvedMethod("loss", method)
    inner = getattr(method, "weighting", None)
    if isinstance(method, (Aggregator, GradVac)) and callable(inner):
        method = inner
    if isinstance(method, Aggregator):
        return ResolvedMethod("jacobian", method)
    if not callable(method):
        raise TypeError(
            "method must be a Gramian weighting (callable gramian -> weights), a stateful "
            "one (with init_state), an Aggregator or a LossWeighting, got "
            f"{type(method).__name__}."
        )
    keywords = _keywords(method)
    kind: MethodKind = "stateful" if callable(getattr(method, "init_state", None)) else "gramian"
    return ResolvedMethod(kind, method, "losses" in keywords, "generator" in keywords)


def _check_weights(weights: object, m: int, name: str) -> Tensor:
    if not isinstance(weights, Tensor):
        raise TypeError(f"method {name} must return a Tensor of weights, got "
                        f"{type(weights).__name__}.")
    if weights.shape != (m,):
        raise ValueError(f"method {name} returned weights of shape {tuple(weights.shape)}; "
                         f"expected ({m},), one per task.")
    if not bool(torch.isfinite(weights).all()):
        raise ValueError(f"method {name} returned non-finite weights {weights.tolist()}.")
    return weights.detach()


def gramian_weights(
    resolved: ResolvedMethod,
    gramian: Tensor,
    losses: Tensor,
    state: Any,
    generator: torch.Generator | None,
    skip_zero: bool,
) -> tuple[Tensor, Any]:
    """Weights ``(m,)`` (and the next state) of a ``"gramian"`` or ``"stateful"`` method.

    With ``skip_zero`` (stateless methods only), tasks whose gradient is exactly zero
    (a task with no label in the batch) get weight 0 and the method only sees the
    Gramian of the other tasks.
    """
    m = gramian.shape[0]
    kwargs: dict[str, Any] = {}
    if resolved.takes_generator and generator is not None:
        kwargs["generator"] = generator
    if resolved.kind == "stateful":
        if state is None:
            state = resolved.fn.init_state(m)
        weights, new_state = resolved.fn(gramian, state, **kwargs)
        return _check_weights(weights, m, resolved.name), new_state
    active = torch.arange(m, device=gramian.device)
    if skip_zero:
        active = torch.nonzero(gramian.diagonal() > 0).flatten()
        if active.numel() == 0:
            return gramian.new_zeros(m), None
    sub = gramian if active.numel() == m else gramian[active][:, active]
    if resolved.takes_losses:
        kwargs["losses"] = losses if active.numel() == m else losses[active]
    weights = _check_weights(resolved.fn(sub, **kwargs), int(active.numel()), resolved.name)
    if active.numel() == m:
        return weights, None
    full = gramian.new_zeros(m)
    full[active] = weights.to(full.dtype)
    return full, None
