"""Penalties of the linear multi-task models, one class per regulariser.

W is the (n_features, n_tasks) weight matrix. Every penalty stores its hyperparameters
verbatim, checks them in ``validate()`` and exposes the class attributes

- ``n_blocks``: 1 when the variable is ``W`` itself, 2 for the composite penalties
  whose variable ``V`` has shape ``(2, n_features, n_tasks)`` and ``W = V.sum(axis=0)``;
- ``smooth``: True for penalties with ``value``/``gradient``/``lipschitz``, False for
  those used through ``value``/``prox``;
- ``is_norm``: True for ``alpha * Omega(W)`` with a norm ``Omega``; these also have
  ``dual_norm(G)`` and ``alpha_max(grad0)``.

All have ``subdiff_distance(W, grad)``, the optimality measure used to stop solvers.

Proximable norms: :class:`Lasso`, :class:`L21`, :class:`L1Linf`, :class:`TraceNorm`.
Smooth: :class:`Ridge`, :class:`MeanRegularized`, :class:`GraphRegularized`,
:class:`Clustered`. Composite: :class:`Dirty`, :class:`Robust`, :class:`SparseLowRank`.
"""

from __future__ import annotations

from polytask.linear._penalties_composite import Dirty, Robust, SparseLowRank
from polytask.linear._penalties_norms import L21, L1Linf, Lasso, TraceNorm
from polytask.linear._penalties_smooth import (
    Clustered,
    GraphRegularized,
    MeanRegularized,
    Ridge,
)

__all__ = [
    "L21",
    "Clustered",
    "Dirty",
    "GraphRegularized",
    "L1Linf",
    "Lasso",
    "MeanRegularized",
    "Ridge",
    "Robust",
    "SparseLowRank",
    "TraceNorm",
]
