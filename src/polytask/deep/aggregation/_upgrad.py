"""UPGrad: average of the projections of the task gradients onto their dual cone."""

from __future__ import annotations

from ._base import Array, GramianAggregator, Weighting
from ._dual_cone import dual_cone_weights_batched


class UPGradWeighting(Weighting):
    r"""Weights of UPGrad, the mean projection of every gradient onto the dual cone.

    The dual cone of the task gradients is :math:`C^* = \{x : J x \ge 0\}`, the
    directions that conflict with no task.  The projection of :math:`g_i` onto it is
    :math:`\pi(g_i) = J^\top v_i` with

    .. math:: v_i = \arg\min_{v \ge e_i} v^\top G v

    (the Lagrange dual of :math:`\min_{x} \|x - g_i\|^2` s.t. :math:`J x \ge 0`), and
    UPGrad returns :math:`w = \frac{1}{m} \sum_i v_i`.  The ``m`` projections share
    ``G`` and are solved together by a primal-dual active-set method [2]_ (one batched
    ``(m, m, m)`` linear solve per iteration, usually two or three iterations), which
    stops at an exact solution of the optimality conditions of every projection.  Each
    solution is certified by those conditions; a projection that is not certified, and
    every projection of a numerically singular Gramian, is solved exactly by
    non-negative least squares on a factor of ``G`` (Lawson–Hanson [3]_), and an
    :class:`AggregationWarning` is emitted if that fails too.  A zero Gramian gives
    ``w = 1/m``.

    References
    ----------
    .. [1] P. Quinton and V. Rey, "Jacobian Descent for Multi-Objective Optimization",
       arXiv:2406.16232, 2024.
    .. [2] M. Hintermüller, K. Ito and K. Kunisch, "The primal-dual active set strategy
       as a semismooth Newton method", *SIAM J. Optim.* 13(3), 2002.
    .. [3] C. L. Lawson and R. J. Hanson, *Solving Least Squares Problems*, SIAM, 1995.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.aggregation import UPGradWeighting
    >>> gramian = torch.tensor([[1.0, -0.5], [-0.5, 1.0]])
    >>> [round(w, 4) for w in UPGradWeighting()(gramian).tolist()]
    [0.75, 0.75]
    """

    def __init__(self) -> None:
        self._freeze()

    def _solve(self, gramian: Array, eps: float) -> Array:
        result: Array = dual_cone_weights_batched(gramian, "UPGrad").mean(axis=0)
        return result


class UPGrad(GramianAggregator[UPGradWeighting]):
    r"""Unconflicting projection of gradients (UPGrad).

    :math:`d = \frac{1}{m} \sum_i \pi_{C^*}(g_i)` where :math:`\pi_{C^*}` projects onto
    the dual cone :math:`\{x : J x \ge 0\}`; see :class:`UPGradWeighting`.  ``d`` is
    non-conflicting (:math:`J d \ge 0`), linear under positive scaling of ``J`` and
    invariant to the order of the tasks; a single task gives ``d = g_1``.

    References
    ----------
    .. [1] P. Quinton and V. Rey, "Jacobian Descent for Multi-Objective Optimization",
       arXiv:2406.16232, 2024.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.aggregation import UPGrad
    >>> jacobian = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    >>> d = UPGrad()(jacobian)
    >>> bool((jacobian @ d >= -1e-6).all())
    True
    """

    def __init__(self) -> None:
        super().__init__(UPGradWeighting())
