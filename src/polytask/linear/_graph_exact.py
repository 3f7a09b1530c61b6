r"""Graph-regularised multi-task least squares, solved exactly as one linear system.

With the squared loss, ``F(W) = sum_t (w_t^T H_t w_t / 2 - b_t^T w_t) + const``
(:meth:`SquaredLoss.quadratic_terms`, normalisation and intercept centring included),
and quadratic penalties that couple the tasks, :class:`GraphRegularized`
(``alpha tr(W L W^T)``), :class:`Ridge` (``alpha / 2 ||W||_F^2``) and
:class:`MeanRegularized`, the penalties' gradient is ``W M`` for one symmetric
positive semi-definite (n_tasks, n_tasks) matrix ``M`` (:func:`task_coupling`), and the
minimiser solves

    H_t w_t + (W M)_t = b_t   for every task t.

* **Shared Hessian** (shared design, no missing label): ``H W + W M = B`` is a Sylvester
  equation. With ``H = Q diag(lam) Q^T`` and ``M = U diag(sig) U^T`` its solution is
  ``W = Q [(Q^T B U)_ij / (lam_i + sig_j)] U^T``: two symmetric eigendecompositions.
* **Per-task Hessians**: the ``(d T) x (d T)`` system ``(blockdiag(H_t) + M kron I_d)
  vec(W) = vec(B)`` is symmetric positive definite and as sparse as the task graph. The
  tasks are ordered by reverse Cuthill-McKee on the graph, which makes it banded with
  ``d (beta + 1) - 1`` super-diagonals (``beta`` the graph's bandwidth in that order: 1
  for a chain), and it is solved by a banded Cholesky factorisation.

When the minimiser is not unique (no ridge and a Hessian that is singular along the
directions the graph leaves free) the minimum-norm solution is returned (pseudo-inverse
in the shared case, conjugate gradients from zero in the per-task case).

References
----------
J. Zhou, J. Chen and J. Ye. MALSAR: Multi-tAsk Learning via StructurAl Regularization
(SRMTL). Arizona State University, 2011.
R. H. Bartels and G. W. Stewart. Solution of the matrix equation AX + XB = C.
Communications of the ACM 15(9), 1972.
E. Cuthill and J. McKee. Reducing the bandwidth of sparse symmetric matrices.
ACM National Conference, 1969.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.csgraph
import scipy.sparse.linalg
from numpy.typing import NDArray

from polytask.linear._objective import (
    Objective,
    SolverResult,
    ZeroPenalty,
    blas_threads,
    check_requirements,
)
from polytask.linear._penalties_smooth import GraphRegularized, MeanRegularized, Ridge

__all__ = ["GraphRegularizedSolver", "exact_cost", "solve_graph_regularized", "task_coupling"]

FArray = NDArray[np.float64]

_COUPLED: tuple[type, ...] = (GraphRegularized, Ridge, MeanRegularized)


def task_coupling(penalties: Sequence[Any], n_tasks: int) -> FArray:
    """The matrix ``M`` with ``sum_k gradient_k(W) = W M`` for quadratic penalties.

    ``GraphRegularized(alpha)`` contributes ``2 alpha L``, ``Ridge(alpha)`` contributes
    ``alpha I`` and ``MeanRegularized(alpha, beta)`` ``2 alpha (I - 11^T / T) + 2 beta I``;
    :class:`ZeroPenalty` contributes nothing.

    Parameters
    ----------
    penalties : sequence of penalty objects
    n_tasks : int

    Returns
    -------
    ndarray of shape (n_tasks, n_tasks)
        Symmetric positive semi-definite.

    Raises
    ------
    ValueError
        If a penalty is of another class (subclasses included), is invalid, or its
        graph does not have ``n_tasks`` nodes.

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear import GraphRegularized, Ridge
    >>> from polytask.linear._graph_exact import task_coupling
    >>> chain = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> task_coupling([GraphRegularized(0.5, chain), Ridge(0.1)], 2).tolist()
    [[1.1, -1.0], [-1.0, 1.1]]
    """
    M = np.zeros((n_tasks, n_tasks))
    eye = np.eye(n_tasks)
    for p in penalties:
        kind = type(p)
        if kind is ZeroPenalty:
            continue
        if kind not in _COUPLED:
            raise ValueError(
                f"penalty {kind.__name__} is not a quadratic task coupling; the exact solver "
                "takes GraphRegularized, Ridge and MeanRegularized only (use FISTA or ADMM "
                "for other penalties)."
            )
        p.validate()
        if kind is GraphRegularized:
            L = p.laplacian()
            if L.shape[0] != n_tasks:
                raise ValueError(
                    f"GraphRegularized: graph has {L.shape[0]} tasks but the data have "
                    f"{n_tasks}; expected one graph node per task."
                )
            M += 2.0 * float(p.alpha) * L
        elif kind is Ridge:
            M += float(p.alpha) * eye
        else:
            centring = eye - np.full((n_tasks, n_tasks), 1.0 / n_tasks)
            M += 2.0 * float(p.alpha) * centring + 2.0 * float(p.beta) * eye
    return 0.5 * (M + M.T)


def _band_order(M: FArray, n_features: int) -> tuple[NDArray[np.intp], int]:
    """Task order of small bandwidth and the number of super-diagonals of the system."""
    T = M.shape[0]
    pattern = M != 0
    np.fill_diagonal(pattern, False)
    if not pattern.any():
        return np.arange(T), n_features - 1
    graph = scipy.sparse.csr_matrix(pattern)
    perm = np.asarray(
        scipy.sparse.csgraph.reverse_cuthill_mckee(graph, symmetric_mode=True), dtype=np.intp
    )
    position = np.empty(T, dtype=np.intp)
    position[perm] = np.arange(T)
    rows, cols = np.nonzero(pattern)
    beta = int(np.abs(position[rows] - position[cols]).max())
    return perm, n_features * (beta + 1) - 1


def exact_cost(n_features: int, coupling: FArray, shared: bool) -> tuple[float, float]:
    """Estimated flops and bytes of :func:`solve_graph_regularized`.

    Shared case: ``10 (d^3 + T^3)`` flops for the two eigendecompositions, and the
    ``d x d``, ``T x T`` and two ``d x T`` matrices. Per-task case: ``n (u + 1)^2`` flops
    for the banded Cholesky factorisation and ``n (u + 1)`` floats for the band
    (``n = d T`` unknowns, ``u`` super-diagonals after the reverse Cuthill-McKee
    ordering).

    Parameters
    ----------
    n_features : int
    coupling : ndarray of shape (n_tasks, n_tasks)
        ``M`` (see :func:`task_coupling`).
    shared : bool
        Whether every task has the same Hessian.

    Returns
    -------
    flops, bytes : float

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear._graph_exact import exact_cost
    >>> chain = np.diag(np.ones(3), 1) + np.diag(np.ones(3), -1)  # 4 tasks in a row
    >>> exact_cost(2, chain, shared=False)  # n = 8, u = 3
    (128.0, 256.0)
    """
    d, T = float(n_features), float(coupling.shape[0])
    if shared:
        return 10.0 * (d**3 + T**3), 8.0 * (d + T) ** 2
    _, u = _band_order(coupling, int(n_features))
    return d * T * float(u + 1) ** 2, 8.0 * d * T * float(u + 1)


def _check_system(H: FArray, B: FArray, M: FArray) -> None:
    if B.ndim != 2:
        raise ValueError(
            f"solve_graph_regularized: B must be 2-D (n_features, n_tasks); got {B.shape}."
        )
    d, T = B.shape
    if H.shape not in ((d, d), (T, d, d)):
        raise ValueError(
            f"solve_graph_regularized: H must have shape ({d}, {d}) or ({T}, {d}, {d}) for B "
            f"of shape {B.shape}; got {H.shape}."
        )
    if M.shape != (T, T) or not np.allclose(M, M.T, rtol=1e-10, atol=1e-12):
        raise ValueError(
            f"solve_graph_regularized: coupling must be a symmetric ({T}, {T}) matrix (one "
            f"row per task); got shape {M.shape}."
        )


def solve_graph_regularized(H: FArray, B: FArray, coupling: FArray) -> FArray:
    r"""Minimiser of ``sum_t (w_t^T H_t w_t / 2 - b_t^T w_t) + tr(W M W^T) / 2``.

    Stationarity reads ``H_t w_t + (W M)_t = b_t`` for every task (see the module
    docstring for the two methods).

    Parameters
    ----------
    H : ndarray of shape (n_features, n_features) or (n_tasks, n_features, n_features)
        Symmetric positive semi-definite Hessian of every task's loss (one when shared).
    B : ndarray of shape (n_features, n_tasks)
        Linear terms ``b_t``.
    coupling : ndarray of shape (n_tasks, n_tasks)
        Symmetric positive semi-definite ``M`` (see :func:`task_coupling`).

    Returns
    -------
    ndarray of shape (n_features, n_tasks)
        The minimiser (the minimum-norm one when it is not unique).

    Raises
    ------
    ValueError
        If the shapes do not match or ``coupling`` is not symmetric.

    References
    ----------
    R. H. Bartels and G. W. Stewart. Solution of the matrix equation AX + XB = C.
    Communications of the ACM 15(9), 1972.

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear._graph_exact import solve_graph_regularized
    >>> H, B = np.eye(2), np.array([[2.0, 0.0], [0.0, 0.0]])
    >>> M = np.array([[1.0, -1.0], [-1.0, 1.0]])  # pull the two tasks together
    >>> solve_graph_regularized(H, B, M).round(6).tolist()
    [[1.333333, 0.666667], [0.0, 0.0]]
    """
    H = np.asarray(H, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    M = np.asarray(coupling, dtype=np.float64)
    _check_system(H, B, M)
    if H.ndim == 2:
        return _solve_shared(H, B, M)
    return _solve_per_task(H, B, M)


def _solve_shared(H: FArray, B: FArray, M: FArray) -> FArray:
    lam, Q = np.linalg.eigh(H)
    sig, U = np.linalg.eigh(M)
    denom = lam[:, None] + sig[None, :]
    floor = max(B.shape) * np.finfo(float).eps * max(float(np.abs(denom).max()), 1e-300)
    keep = denom > floor  # the operator is PSD: smaller values are round-off of zeros
    inv = np.zeros_like(denom)
    inv[keep] = 1.0 / denom[keep]
    return Q @ (((Q.T @ B) @ U) * inv) @ U.T


def _banded(H: FArray, M: FArray, u: int) -> FArray:
    """Upper banded storage of ``blockdiag(H_t) + M kron I_d`` (LAPACK's ``ab``)."""
    T, d, _ = H.shape
    ab = np.zeros((u + 1, d * T))
    starts = (np.arange(T) * d)[:, None]
    for o in range(d):  # entry (p d + k, p d + k + o) of diagonal block p
        k = np.arange(d - o)
        ab[u - o, (starts + k + o).ravel()] = H[:, k, k + o].ravel()
    p, q = np.nonzero(np.triu(M))  # q >= p: entries (p d + k, q d + k)
    cols = (q * d)[:, None] + np.arange(d)
    rows = np.broadcast_to((u - (q - p) * d)[:, None], cols.shape)
    ab[rows, cols] += np.broadcast_to(M[p, q][:, None], cols.shape)
    return ab


def _solve_per_task(H: FArray, B: FArray, M: FArray) -> FArray:
    d, T = B.shape
    perm, u = _band_order(M, d)
    Hp, Mp = H[perm], M[np.ix_(perm, perm)]
    rhs = np.ascontiguousarray(B[:, perm].T).ravel()

    def apply(v: FArray) -> FArray:
        V = v.reshape(T, d)
        return (np.einsum("tjk,tk->tj", Hp, V) + Mp @ V).ravel()

    x: FArray | None
    try:
        x = scipy.linalg.solveh_banded(_banded(Hp, Mp, u), rhs, check_finite=False)
    except np.linalg.LinAlgError:  # singular: the minimiser is not unique
        x = None
    scale = float(np.linalg.norm(rhs)) or 1.0
    if x is None or not np.all(np.isfinite(x)) or np.linalg.norm(apply(x) - rhs) > 1e-8 * scale:
        op = scipy.sparse.linalg.LinearOperator((d * T, d * T), matvec=apply, dtype=np.float64)
        x, _ = scipy.sparse.linalg.cg(op, rhs, rtol=1e-13, atol=0.0, maxiter=20 * d * T)
    W = np.empty_like(B)
    W[:, perm] = x.reshape(T, d).T
    return W


@dataclass
class GraphRegularizedSolver:
    r"""Exact solver for the squared loss with graph-regularised (and ridge) penalties.

    Minimises ``F(W) + alpha tr(W L W^T)`` (:class:`GraphRegularized`, MALSAR's SRMTL
    with ``L = R R^T``) plus any :class:`Ridge` and :class:`MeanRegularized` terms, all
    quadratic, through one linear solve (:func:`solve_graph_regularized`): a Sylvester
    equation for a shared design, a banded positive definite system of ``d T`` unknowns
    for per-task designs or missing labels. The certificate is the relative gradient
    norm ``||grad||_F / ||grad at 0||_F`` at the solution (the KKT residual), reported in
    ``stop_crit``; ``n_iter`` is 1. Estimators pick this solver for such penalties when
    :func:`exact_cost` is at most 1e11 flops and 256 MiB (School, 139 tasks of 28
    features: 0.05 s for a chain of tasks, about 1 s for the complete graph).

    Parameters
    ----------
    tol : float, default=1e-6
        The result is flagged ``converged`` when the certificate is below ``tol`` (a
        larger value means the linear system was ill-conditioned).

    Attributes
    ----------
    required : dict
        Methods the solver needs from each object, checked by :meth:`solve`.

    References
    ----------
    J. Zhou, J. Chen and J. Ye. MALSAR: Multi-tAsk Learning via StructurAl
    Regularization (SRMTL). Arizona State University, 2011.

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear import GraphRegularized, Ridge, SquaredLoss
    >>> from polytask.linear._graph_exact import GraphRegularizedSolver
    >>> rng = np.random.default_rng(0)
    >>> Xs = [rng.normal(size=(20, 3)) for _ in range(4)]
    >>> ys = [x @ np.ones(3) + 0.1 * rng.normal(size=20) for x in Xs]
    >>> chain = np.diag(np.ones(3), 1) + np.diag(np.ones(3), -1)
    >>> datafit = SquaredLoss().initialize(Xs, ys)
    >>> res = GraphRegularizedSolver().solve(
    ...     datafit, GraphRegularized(1.0, chain), smooth=[Ridge(0.1)])
    >>> res.converged, res.W.shape
    (True, (3, 4))
    """

    tol: float = 1e-6

    required: ClassVar[dict[str, tuple[str, ...]]] = {
        "datafit": ("quadratic_terms", "state", "value", "gradient"),
        "penalty": ("value", "subdiff_distance"),
        "smooth penalty": ("value", "gradient"),
    }

    def solve(
        self,
        datafit: Any,
        penalty: Any,
        W0: FArray | None = None,
        smooth: Sequence[Any] = (),
    ) -> SolverResult:
        """Solve exactly (``W0`` is ignored: no iteration to warm-start).

        Parameters
        ----------
        datafit : initialized SquaredLoss
        penalty : GraphRegularized, Ridge, MeanRegularized or ZeroPenalty
        W0 : ignored
        smooth : sequence of GraphRegularized, Ridge or MeanRegularized, default=()

        Returns
        -------
        SolverResult

        Raises
        ------
        ValueError
            If ``tol`` is not a number ``>= 0``, a penalty is not one of the above, the
            graph does not have one node per task, or the datafit lacks
            ``quadratic_terms`` (is not a squared loss) or is not initialized.
        """
        tol = self.tol
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol >= 0:
            raise ValueError(f"GraphRegularizedSolver: tol must be a number >= 0; got {tol!r}.")
        check_requirements(
            "GraphRegularizedSolver",
            self.required,
            {"datafit": [datafit], "penalty": [penalty], "smooth penalty": smooth},
        )
        obj = Objective(datafit, penalty, smooth)
        try:
            M = task_coupling([penalty, *smooth], obj.T)
        except ValueError as exc:
            raise ValueError(f"GraphRegularizedSolver: {exc}") from exc
        H, B = datafit.quadratic_terms()
        with blas_threads(obj.d):
            W = solve_graph_regularized(H, B, M)
        S = datafit.state(W)
        P, _, crit = obj.certificate(W, S, obj.grad(W, S))
        return SolverResult(
            W=W, V=W, n_iter=1, objective=P, dual_gap=None, stop_crit=crit, converged=crit <= tol
        )


# Budget of the automatic choice: a factorisation of a few seconds at most (School's
# complete graph, 6e10 estimated flops, takes about 1 s where ADMM takes 1.5-2.5 s).
_EXACT_MAX_FLOPS = 1e11
_EXACT_MAX_BYTES = 2.0**28


def graph_exact_applies(datafit: Any, prox: Any, smooth: Sequence[Any]) -> bool:
    """Whether an estimator should use :class:`GraphRegularizedSolver`.

    True for a squared loss whose penalties are all quadratic couplings (see
    :func:`task_coupling`), at least one of them a :class:`GraphRegularized`, when the
    solve costs at most 1e11 flops and 256 MiB (:func:`exact_cost`).

    Examples
    --------
    >>> import numpy as np
    >>> from polytask.linear import GraphRegularized, L21, SquaredLoss, ZeroPenalty
    >>> from polytask.linear._graph_exact import graph_exact_applies
    >>> rng = np.random.default_rng(0)
    >>> loss = SquaredLoss().initialize(rng.normal(size=(10, 3)), rng.normal(size=(10, 2)))
    >>> graph = GraphRegularized(1.0, np.ones((2, 2)) - np.eye(2))
    >>> graph_exact_applies(loss, graph, ()), graph_exact_applies(loss, L21(1.0), (graph,))
    (True, False)
    """
    penalties = [prox, *smooth]
    if not hasattr(datafit, "quadratic_terms") or not hasattr(datafit, "design_"):
        return False
    if not any(type(p) is GraphRegularized for p in penalties):
        return False
    if any(type(p) is not ZeroPenalty and type(p) not in _COUPLED for p in penalties):
        return False
    design = datafit.design_
    try:
        M = task_coupling(penalties, int(design.n_tasks))
    except (ValueError, TypeError):
        return False  # the solver that runs will report the error
    shared = bool(design.is_shared and design.mask is None)
    flops, size = exact_cost(int(design.n_features), M, shared)
    return flops <= _EXACT_MAX_FLOPS and size <= _EXACT_MAX_BYTES
