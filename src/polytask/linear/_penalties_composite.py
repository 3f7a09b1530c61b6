"""Composite ("dirty") penalties: the model is a sum of two differently-regularised parts.

The optimisation variable is ``V`` of shape ``(2, n_features, n_tasks)``; the model weight
is ``W = V[0] + V[1] = V.sum(axis=0)``. The penalty is ``pen_0(V[0]) + pen_1(V[1])``, so its
prox is separable over the two blocks, and ``subdiff_distance`` is the larger of the two
blocks' distances. As a function of ``W`` alone, ``min_{V[0] + V[1] = W} pen(V)`` is a norm
whose dual norm is ``max_b Omega_b*(G) / alpha_b`` (:meth:`weight_dual_norm`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike

from polytask._typing import FloatArray
from polytask.linear._penalties_base import (
    ParamsMixin,
    as_blocks,
    as_matrix,
    check_real,
    check_same_shape,
    check_step,
)
from polytask.linear._penalties_norms import (
    L21,
    L1Linf,
    Lasso,
    TraceNorm,
    _L21Columns,
    _NormPenalty,
)

__all__ = ["Dirty", "Robust", "SparseLowRank"]


class _CompositePenalty(ParamsMixin):
    """``pen(V) = pen_0(V[0]) + pen_1(V[1])`` for two norm penalties ``pen_b``."""

    n_blocks: ClassVar[int] = 2
    smooth: ClassVar[bool] = False
    is_norm: ClassVar[bool] = False

    def _name(self) -> str:
        return type(self).__name__

    def _components(self) -> tuple[_NormPenalty, _NormPenalty]:
        raise NotImplementedError

    def value(self, V: ArrayLike) -> float:
        """``pen_0(V[0]) + pen_1(V[1])`` for ``V`` of shape (2, n_features, n_tasks)."""
        Vb = as_blocks(V, self._name(), 2)
        return float(sum(p.value(Vb[b]) for b, p in enumerate(self._components())))

    def prox(self, V: ArrayLike, step: float) -> FloatArray:
        """Block-wise prox: ``[prox_{step pen_0}(V[0]), prox_{step pen_1}(V[1])]``.

        Parameters
        ----------
        V : array_like of shape (2, n_features, n_tasks)
        step : float
            Step size, ``> 0``.

        Returns
        -------
        ndarray of shape (2, n_features, n_tasks)
        """
        Vb = as_blocks(V, self._name(), 2)
        s = check_step(step, self._name())
        return np.stack([p.prox(Vb[b], s) for b, p in enumerate(self._components())])

    def subdiff_distance(self, V: ArrayLike, grad: ArrayLike) -> float:
        """Largest over the blocks of the distance of ``-grad[b]`` to ``dpen_b(V[b])``.

        Parameters
        ----------
        V : array_like of shape (2, n_features, n_tasks)
        grad : array_like of shape (2, n_features, n_tasks) or (n_features, n_tasks)
            Gradient of the smooth part with respect to ``V``; a single
            ``(n_features, n_tasks)`` array is the gradient with respect to ``W``, which
            both blocks share.
        """
        owner = self._name()
        Vb = as_blocks(V, owner, 2)
        G = np.asarray(grad)
        if G.ndim == 2:
            G = np.broadcast_to(as_matrix(G, owner, "grad")[None], (2, *G.shape))
        G = as_blocks(G, owner, 2, "grad")
        check_same_shape(Vb, G, owner, ("V", "grad"))
        return max(p.subdiff_distance(Vb[b], G[b]) for b, p in enumerate(self._components()))

    def weight_dual_norm(self, G: ArrayLike) -> float:
        """Dual norm of ``W -> min_{V[0] + V[1] = W} pen(V)``: ``max_b Omega_b*(G) / alpha_b``.

        ``V = 0`` is optimal exactly when this is ``<= 1`` at the datafit gradient at 0; a
        dual point scaled so that it is ``<= 1`` gives a duality gap. A block with
        ``alpha_b = 0`` gives ``inf`` unless ``G = 0``.

        Parameters
        ----------
        G : array_like of shape (n_features, n_tasks)
        """
        Gm = as_matrix(G, self._name(), "G")
        ratios = []
        for p in self._components():
            dual = p.dual_norm(Gm)
            alpha = float(p.alpha)
            ratios.append(dual / alpha if alpha > 0 else (np.inf if dual > 0 else 0.0))
        return float(max(ratios))


@dataclass(eq=False)
class Dirty(_CompositePenalty):
    """Dirty model, ``alpha_shared * sum_j ||B_j,:||_q + alpha_specific * ||S||_1``.

    ``W = B + S``: the block-sparse part ``B = V[0]`` (rows = features shared by all
    tasks, ``q = 2`` or ``q = inf``) plus the entry-wise sparse part ``S = V[1]``
    (task-specific features).

    Parameters
    ----------
    alpha_shared : float, default=1.0
        Level of the row-group penalty on ``B``, ``>= 0``.
    alpha_specific : float, default=1.0
        Level of the l1 penalty on ``S``, ``>= 0``.
    q : {2, inf}, default=2
        Inner norm of the rows of ``B`` (``numpy.inf`` gives the l1/l_inf norm of the
        paper).

    References
    ----------
    A. Jalali, P. Ravikumar, S. Sanghavi and C. Ruan. A dirty model for multi-task
    learning. NIPS 2010.

    Examples
    --------
    >>> pen = Dirty(alpha_shared=1.0, alpha_specific=0.5)
    >>> V = np.zeros((2, 2, 2)); V[0, 0] = [3.0, 4.0]; V[1, 1, 0] = 2.0
    >>> round(pen.value(V), 3)
    6.0
    >>> pen.prox(V, step=1.0).round(2).tolist()
    [[[2.4, 3.2], [0.0, 0.0]], [[0.0, 0.0], [1.5, 0.0]]]
    """

    alpha_shared: float = 1.0
    alpha_specific: float = 1.0
    q: float = 2

    def validate(self) -> None:
        """Check the hyperparameters.

        Raises
        ------
        TypeError, ValueError
            If a level is not a finite number ``>= 0`` or ``q`` is not 2 or inf.
        """
        check_real(self.alpha_shared, "alpha_shared", self._name())
        check_real(self.alpha_specific, "alpha_specific", self._name())
        if isinstance(self.q, bool) or self.q not in (2, np.inf):
            raise ValueError(f"{self._name()}: q must be 2 or numpy.inf; got {self.q!r}")

    def _components(self) -> tuple[_NormPenalty, _NormPenalty]:
        shared: _NormPenalty = L21(self.alpha_shared) if self.q == 2 else L1Linf(self.alpha_shared)
        return shared, Lasso(self.alpha_specific)


@dataclass(eq=False)
class Robust(_CompositePenalty):
    """Robust MTL feature learning, ``alpha_rows ||P||_{2,1} + alpha_tasks ||Q^T||_{2,1}``.

    ``W = P + Q``: ``P = V[0]`` selects features jointly (row groups,
    ``sum_j ||P_j,:||_2``) while ``Q = V[1]`` has whole non-zero columns only for
    outlier tasks (column groups, ``sum_t ||Q_:,t||_2``).

    Parameters
    ----------
    alpha_rows : float, default=1.0
        Level of the row-group penalty on ``P``, ``>= 0``.
    alpha_tasks : float, default=1.0
        Level of the column-group penalty on ``Q``, ``>= 0``.

    References
    ----------
    P. Gong, J. Ye and C. Zhang. Robust multi-task feature learning. KDD 2012.

    Examples
    --------
    >>> pen = Robust(alpha_rows=1.0, alpha_tasks=1.0)
    >>> V = np.zeros((2, 2, 2)); V[0, 0] = [3.0, 4.0]; V[1, :, 1] = [0.6, 0.8]
    >>> round(pen.value(V), 3)
    6.0
    >>> pen.prox(V, step=1.0).round(2).tolist()
    [[[2.4, 3.2], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]]
    """

    alpha_rows: float = 1.0
    alpha_tasks: float = 1.0

    def validate(self) -> None:
        """Check the hyperparameters.

        Raises
        ------
        TypeError, ValueError
            If a level is not a finite number ``>= 0``.
        """
        check_real(self.alpha_rows, "alpha_rows", self._name())
        check_real(self.alpha_tasks, "alpha_tasks", self._name())

    def _components(self) -> tuple[_NormPenalty, _NormPenalty]:
        return L21(self.alpha_rows), _L21Columns(self.alpha_tasks)


@dataclass(eq=False)
class SparseLowRank(_CompositePenalty):
    """Incoherent sparse and low-rank patterns, ``alpha_sparse ||P||_1 + alpha_rank ||Q||_*``.

    ``W = P + Q``: an entry-wise sparse part ``P = V[0]`` plus a low-rank part
    ``Q = V[1]``. Chen, Liu & Ye constrain ``||Q||_* <= tau``; this is the penalised
    (Lagrangian) form, as in MALSAR.

    Parameters
    ----------
    alpha_sparse : float, default=1.0
        Level of the l1 penalty on ``P``, ``>= 0``.
    alpha_rank : float, default=1.0
        Level of the trace-norm penalty on ``Q``, ``>= 0``.

    References
    ----------
    J. Chen, J. Liu and J. Ye. Learning incoherent sparse and low-rank patterns from
    multiple tasks. KDD 2010; ACM TKDD 5(4), 2012.

    Examples
    --------
    >>> pen = SparseLowRank(alpha_sparse=0.5, alpha_rank=1.0)
    >>> V = np.zeros((2, 2, 2)); V[0, 0, 1] = 2.0; V[1] = [[3.0, 0.0], [0.0, 0.5]]
    >>> round(pen.value(V), 3)
    4.5
    >>> pen.prox(V, step=1.0).round(2).tolist()
    [[[0.0, 1.5], [0.0, 0.0]], [[2.0, 0.0], [0.0, 0.0]]]
    """

    alpha_sparse: float = 1.0
    alpha_rank: float = 1.0

    def validate(self) -> None:
        """Check the hyperparameters.

        Raises
        ------
        TypeError, ValueError
            If a level is not a finite number ``>= 0``.
        """
        check_real(self.alpha_sparse, "alpha_sparse", self._name())
        check_real(self.alpha_rank, "alpha_rank", self._name())

    def _components(self) -> tuple[_NormPenalty, _NormPenalty]:
        return Lasso(self.alpha_sparse), TraceNorm(self.alpha_rank)
