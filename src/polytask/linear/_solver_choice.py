"""Which solver an estimator uses when none is given."""

from __future__ import annotations

import dataclasses
from typing import Any

from polytask.linear._admm import ADMM
from polytask.linear._datafit_base import BaseDatafit
from polytask.linear._graph_exact import GraphRegularizedSolver, graph_exact_applies
from polytask.linear._mean_reg_exact import MeanRegularizedSolver
from polytask.linear._objective import ZeroPenalty
from polytask.linear._penalties import L21, L1Linf, Lasso, MeanRegularized
from polytask.linear._prox_newton import ProxNewton
from polytask.linear._solvers import FISTA
from polytask.linear._working_set import WorkingSet

__all__ = ["choose_solver"]

# ADMM factorises the Hessian blocks once; worth it below this many flops (n_blocks d^3).
_ADMM_MAX_EIG_FLOPS = 5e7
# Proximal Newton forms the Hessian blocks at every outer iteration (rows * d^2 flops).
_NEWTON_MAX_FLOPS = 5e8
# A working set pays off when the features are many (a subproblem of ~100 is the start).
_WORKING_SET_MIN_FEATURES = 256


def choose_solver(est: Any, datafit: BaseDatafit, prox: Any, smooth: tuple[Any, ...]) -> Any:
    """The solver an estimator uses: the user's, or the best suited one.

    A user's solver gets the estimator's ``max_iter`` and ``tol``. Otherwise, when no
    smooth penalty is added to a proximable one:

    * the squared loss with :class:`MeanRegularized` alone: the exact linear solve;
    * the squared loss with :class:`GraphRegularized` and only :class:`Ridge` or
      :class:`MeanRegularized` besides (also when they come as smooth penalties): the
      exact linear solve of :class:`GraphRegularizedSolver` when it is affordable (see
      :func:`~polytask.linear._graph_exact.graph_exact_applies`);
    * the squared loss: ADMM when factorising the Hessian blocks is cheap (at most
      5e7 flops, ``n_blocks d^3``); its exact datafit step makes it immune to poorly
      scaled features (School: ~100 iterations where FISTA needs ~30,000);
    * the squared loss with a row-separable norm (:class:`L21`, :class:`Lasso`,
      :class:`L1Linf`) and more than 256 features otherwise: :class:`WorkingSet`, which
      never forms the Gram matrix of all features;
    * the logistic loss: proximal Newton when forming and factorising the per-task
      Hessians is cheap (``T d^3 <= 5e7`` and ``rows d^2 <= 5e8``);
    * FISTA in every other case (large problems, smooth penalties, no penalty).

    Parameters
    ----------
    est : estimator
        Supplies ``solver``, ``max_iter`` and ``tol``.
    datafit : initialized datafit
    prox : penalty object
        The proximable term.
    smooth : tuple of penalty objects
        Smooth penalties added to the datafit.

    Returns
    -------
    solver object

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear import L21, L21Regressor, SquaredLoss, choose_solver
    >>> X, Y = np.random.default_rng(0).normal(size=(30, 4)), np.ones((30, 2))
    >>> datafit = SquaredLoss().initialize(X, Y)
    >>> type(choose_solver(L21Regressor(), datafit, L21(0.1), ())).__name__
    'ADMM'
    """
    if est.solver is not None:
        solver = est.solver
        if dataclasses.is_dataclass(solver) and not isinstance(solver, type):
            names = {f.name for f in dataclasses.fields(solver)}
            pairs = (("max_iter", est.max_iter), ("tol", est.tol))
            updates = {k: v for k, v in pairs if k in names}
            return dataclasses.replace(solver, **updates)
        return solver
    quadratic = bool(getattr(datafit, "quadratic", False)) and hasattr(datafit, "prox_solve")
    if quadratic and not smooth and isinstance(prox, MeanRegularized):
        return MeanRegularizedSolver(tol=est.tol)
    if quadratic and graph_exact_applies(datafit, prox, smooth):
        return GraphRegularizedSolver(tol=est.tol)
    if smooth or isinstance(prox, ZeroPenalty):
        return FISTA(max_iter=est.max_iter, tol=est.tol)
    design = datafit.design_
    d = float(design.n_features)
    if quadratic:
        blocks = 1 if (design.is_shared and design.mask is None) else design.n_tasks
        if blocks * d**3 <= _ADMM_MAX_EIG_FLOPS:
            return ADMM(max_iter=est.max_iter, tol=est.tol)
        if isinstance(prox, (L21, Lasso, L1Linf)) and d > _WORKING_SET_MIN_FEATURES:
            return WorkingSet(max_iter=est.max_iter, tol=est.tol)
    elif hasattr(datafit, "hessian_blocks"):
        per_task_rows = (
            design.stacked_labels().shape[0] if design.is_shared else design.n_samples.mean()
        )
        rows = float(per_task_rows) * design.n_tasks
        if design.n_tasks * d**3 <= _ADMM_MAX_EIG_FLOPS and rows * d**2 <= _NEWTON_MAX_FLOPS:
            return ProxNewton(max_iter=min(est.max_iter, 100), tol=est.tol)
    return FISTA(max_iter=est.max_iter, tol=est.tol)
