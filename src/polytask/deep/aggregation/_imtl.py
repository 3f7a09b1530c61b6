"""IMTL-G: the update with equal projections onto every task's gradient direction."""

from __future__ import annotations

import numpy as np

from ._base import Array, GramianAggregator, Weighting


def imtl_g_weights(gramian: Array, eps: float) -> Array:
    r"""IMTL-G weights on a Gramian (see :class:`IMTLGWeighting`).

    Tasks whose gradient norm is at most ``eps`` times the largest get weight 0.  The
    linear system is solved in the least-squares sense (``numpy.linalg.lstsq``), which
    also covers duplicated gradients, where it is singular but consistent.
    """
    m = gramian.shape[0]
    norms = np.sqrt(np.clip(np.diag(gramian), 0.0, None))
    active = np.flatnonzero(norms > eps * np.max(norms, initial=0.0))
    weights = np.zeros(m)
    if active.size == 0:
        return np.full(m, 1.0 / m)
    r, others = int(active[0]), active[1:]
    if others.size == 0:
        weights[r] = 1.0
        return weights
    g = gramian / norms[r] ** 2  # the weights are invariant to the scale of G
    n = norms / norms[r]
    # (U g_r)_a = (u_r - u_a)·g_r  and  (U Dᵀ)_ab = (u_r - u_a)·(g_r - g_b)
    u_dot_g = g[r] / n[r] - g[others] / n[others][:, None]  # row a: (u_r - u_a)·g_k
    rhs = u_dot_g[:, r]
    system = u_dot_g[:, [r]] - u_dot_g[:, others]
    alpha, *_ = np.linalg.lstsq(system, rhs, rcond=None)
    weights[others] = alpha
    weights[r] = 1.0 - float(alpha.sum())
    return weights


class IMTLGWeighting(Weighting):
    r"""Weights of IMTL-G, the gradient-balancing half of impartial multi-task learning.

    With unit gradients :math:`u_i = g_i / \|g_i\|`, IMTL-G finds :math:`g = \sum_i
    \alpha_i g_i` with :math:`\sum_i \alpha_i = 1` whose projections onto every
    :math:`u_i` are equal, :math:`g^\top u_1 = g^\top u_i`.  With the differences
    :math:`D = [g_1 - g_2, \dots, g_1 - g_m]^\top` and :math:`U = [u_1 - u_2, \dots,
    u_1 - u_m]^\top`, the closed form is

    .. math:: \alpha_{2:m} = g_1^\top U^\top (D U^\top)^{-1}, \qquad
       \alpha_1 = 1 - \sum_{i \ge 2} \alpha_i .

    Every entry of :math:`U g_1` and :math:`U D^\top` is a combination of inner
    products :math:`G_{ij}` divided by norms :math:`\sqrt{G_{ii}}`, so the weights come
    from the Gramian alone; they are invariant to the scale of ``G`` and to the
    reference task when the system is non-singular.  A zero gradient has no direction:
    it gets weight 0 and the others are balanced among themselves (all zero: uniform
    weights).

    The common projection :math:`p = g^\top u_i` is positive for two tasks, but from
    three tasks on it can be negative (e.g. a small gradient almost in the span of two
    large ones), and then the update conflicts with *every* task.  IMTL-G is
    impartial, not non-conflicting; use MGDA, UPGrad or Nash-MTL when ``J d ≥ 0``
    matters.

    References
    ----------
    .. [1] L. Liu, Y. Li, Z. Kuang, J.-H. Xue, Y. Chen, W. Yang, Q. Liao and W. Zhang,
       "Towards Impartial Multi-task Learning", ICLR 2021.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.aggregation import IMTLGWeighting
    >>> gramian = torch.tensor([[1.0, 0.0], [0.0, 4.0]])
    >>> [round(w, 4) for w in IMTLGWeighting()(gramian).tolist()]
    [0.6667, 0.3333]
    """

    def __init__(self) -> None:
        self._freeze()

    def _solve(self, gramian: Array, eps: float) -> Array:
        return imtl_g_weights(gramian, eps)


class IMTLG(GramianAggregator[IMTLGWeighting]):
    r"""IMTL-G: the combination of the task gradients with equal projections on each.

    :math:`d = \sum_i \alpha_i g_i`, :math:`\sum_i \alpha_i = 1`, with
    :math:`d^\top g_i / \|g_i\|` the same for every task; see :class:`IMTLGWeighting`.
    Linear under positive scaling of ``J``, invariant to the order of the tasks; a
    single task gives ``d = g_1``.

    References
    ----------
    .. [1] L. Liu, Y. Li, Z. Kuang, J.-H. Xue, Y. Chen, W. Yang, Q. Liao and W. Zhang,
       "Towards Impartial Multi-task Learning", ICLR 2021.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.aggregation import IMTLG
    >>> d = IMTLG()(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
    >>> [round(x, 4) for x in d.tolist()]
    [0.6667, 0.6667]
    """

    def __init__(self) -> None:
        super().__init__(IMTLGWeighting())
