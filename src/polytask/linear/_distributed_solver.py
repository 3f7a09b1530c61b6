"""The public solver of :mod:`polytask.linear.distributed` and its result.

The iteration is :class:`~polytask.linear.FISTA`'s own, given this rank's
:class:`~polytask.linear._distributed_comm.TaskComm`; this module validates the ranks'
input together and assembles the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from polytask.linear._distributed_comm import TaskComm, signature
from polytask.linear._distributed_penalties import shard_penalty
from polytask.linear._objective import blas_threads, check_requirements
from polytask.linear._solvers import FISTA, _Run, _validate_common

__all__ = ["DistributedFISTA", "DistributedResult"]

FArray = NDArray[np.float64]


@dataclass(frozen=True)
class DistributedResult:
    """What a sharded fit returns on every rank.

    Attributes
    ----------
    W : ndarray of shape (n_features, n_local_tasks)
        This rank's columns of the weights (:func:`gather_tasks` assembles all of them).
    task_offset : int
        Global index of this rank's first task.
    task_counts : tuple of int
        Number of tasks of every rank, in rank order.
    n_iter : int
        Iterations run.
    objective : float
        Objective value over all tasks (the same on every rank).
    dual_gap : float or None
        Duality gap over all tasks, when the penalty admits one.
    stop_crit : float
        The certified measure compared with ``tol`` (see :class:`~polytask.linear.FISTA`).
    converged : bool
        Whether ``stop_crit <= tol``.

    Examples
    --------
    >>> from polytask.linear.distributed import DistributedResult
    >>> res = DistributedResult(np.zeros((4, 2)), 3, (3, 2), 10, 1.5, 1e-9, 1e-9, True)
    >>> res.n_tasks, list(res.tasks)
    (5, [3, 4])
    """

    W: FArray
    task_offset: int
    task_counts: tuple[int, ...]
    n_iter: int
    objective: float
    dual_gap: float | None
    stop_crit: float
    converged: bool

    @property
    def n_tasks(self) -> int:
        """Total number of tasks over all ranks."""
        return int(sum(self.task_counts))

    @property
    def tasks(self) -> range:
        """Global indices of this rank's tasks."""
        return range(self.task_offset, self.task_offset + self.W.shape[1])


@dataclass
class DistributedFISTA:
    r"""FISTA on task blocks: every rank runs it on its own tasks, in lockstep.

    Same iteration, backtracking, restart and certified stopping rule as
    :class:`~polytask.linear.FISTA` (the duality gap for a norm penalty alone, otherwise
    the distance of ``-grad`` to the subdifferential), with every global quantity
    all-reduced over the ranks (see the module docstring). Every rank must call
    :meth:`solve` with the same penalties and settings; input errors found on one rank
    are raised on all of them.

    Parameters
    ----------
    max_iter : int, default=1000
        Maximum number of iterations.
    tol : float, default=1e-6
        Tolerance on the stopping criterion.
    backtracking : bool, default=True
        Adapt the step size (decisions taken on all-reduced quantities).
    restart : {"gradient", "function"} or None, default="gradient"
        Adaptive restart scheme.

    References
    ----------
    A. Beck and M. Teboulle. A fast iterative shrinkage-thresholding algorithm for
    linear inverse problems. SIAM J. Imaging Sciences 2(1), 2009.
    B. O'Donoghue and E. Candès. Adaptive restart for accelerated gradient schemes.
    Foundations of Computational Mathematics 15, 2015.

    Examples
    --------
    On one rank it is :class:`~polytask.linear.FISTA`:

    >>> import os, shutil, tempfile
    >>> import torch.distributed as dist
    >>> from polytask.linear import FISTA, L1Linf, SquaredLoss
    >>> from polytask.linear.distributed import DistributedFISTA
    >>> tmp = tempfile.mkdtemp()
    >>> dist.init_process_group(
    ...     "gloo", init_method="file://" + os.path.join(tmp, "store"), rank=0, world_size=1)
    >>> rng = np.random.default_rng(0)
    >>> loss = SquaredLoss().initialize(rng.normal(size=(30, 4)), rng.normal(size=(30, 3)))
    >>> res = DistributedFISTA(tol=1e-10).solve(loss, L1Linf(alpha=3.0))
    >>> ref = FISTA(tol=1e-10).solve(loss, L1Linf(alpha=3.0))
    >>> res.converged, bool(np.allclose(res.W, ref.W, atol=1e-6))
    (True, True)
    >>> dist.destroy_process_group()
    >>> shutil.rmtree(tmp)
    """

    max_iter: int = 1000
    tol: float = 1e-6
    backtracking: bool = True
    restart: Literal["gradient", "function"] | None = "gradient"

    required: ClassVar[dict[str, tuple[str, ...]]] = FISTA.required

    def _validate(self) -> None:
        _validate_common("DistributedFISTA", self.max_iter, self.tol)
        if self.restart not in ("gradient", "function", None):
            raise ValueError(
                "DistributedFISTA: restart must be 'gradient', 'function' or None; got "
                f"{self.restart!r}."
            )

    def solve(
        self,
        datafit: Any,
        penalty: Any,
        W0: ArrayLike | None = None,
        smooth: Sequence[Any] = (),
        group: Any = None,
    ) -> DistributedResult:
        """Minimise the objective over all ranks' tasks; call it on every rank.

        Parameters
        ----------
        datafit : initialized datafit
            This rank's tasks only, e.g. ``SquaredLoss().initialize(X, Y[:, mine])``.
        penalty : penalty object
            The proximable term (the same on every rank).
        W0 : ndarray of shape (n_features, n_local_tasks), optional
            Warm start of this rank's columns (zeros by default).
        smooth : sequence of penalty objects, default=()
            Smooth penalties added to the datafit (``Ridge``, ``MeanRegularized``).
        group : ProcessGroup, optional
            The ranks taking part (default: the default group).

        Returns
        -------
        DistributedResult

        Raises
        ------
        RuntimeError
            If no process group is initialised.
        ValueError
            If any rank has invalid input, holds no task, or the ranks disagree on the
            number of features or the settings; or a penalty is not supported.
        """
        comm = TaskComm(group, "DistributedFISTA")
        if getattr(datafit, "n_tasks", None) == 0:
            datafit = None  # reported as a rank without tasks by the setup
        return self._run(comm, datafit, penalty, tuple(smooth), W0, None)

    def _run(
        self,
        comm: TaskComm,
        datafit: Any,
        penalty: Any,
        smooth: tuple[Any, ...],
        W0: ArrayLike | None,
        error: Exception | None,
    ) -> DistributedResult:
        owner = comm.owner
        n_local, d, settings = 0, -1, 0.0
        prox: Any = None
        smooth_parts: list[Any] = []
        x0: FArray = np.zeros((0, 0))
        if error is None and datafit is not None:
            try:
                self._validate()
                check_requirements(
                    owner,
                    self.required,
                    {"datafit": [datafit], "penalty": [penalty], "smooth penalty": smooth},
                )
                if not hasattr(datafit, "design_"):
                    raise ValueError(
                        f"datafit {type(datafit).__name__} is not initialized; call "
                        "datafit.initialize(X, Y) with this rank's tasks first."
                    )
                n_local, d = int(datafit.n_tasks), int(datafit.n_features)
                prox = shard_penalty(penalty, comm, owner)
                smooth_parts = [shard_penalty(p, comm, owner) for p in smooth]
                x0 = _start(W0, d, n_local)
                settings = signature(
                    self.max_iter, self.tol, self.backtracking, self.restart,
                    repr(penalty), [repr(p) for p in smooth], type(datafit).__name__,
                    getattr(datafit, "normalization", None),
                    getattr(datafit, "fit_intercept", None),
                )  # fmt: skip
            except (ValueError, TypeError) as exc:
                error = exc
        comm.setup(n_local, d, settings, error)
        fista = FISTA(
            max_iter=self.max_iter,
            tol=self.tol,
            backtracking=self.backtracking,
            restart=self.restart,
        )
        obj = comm.objective(datafit, prox, smooth_parts)
        with blas_threads(d):
            out = _Run(fista, obj, comm, "DistributedFISTA").run(x0)
        return DistributedResult(
            W=out.W,
            task_offset=comm.offset,
            task_counts=comm.counts,
            n_iter=out.n_iter,
            objective=out.objective,
            dual_gap=out.dual_gap,
            stop_crit=out.stop_crit,
            converged=out.converged,
        )


def _start(W0: ArrayLike | None, d: int, n_local: int) -> FArray:
    if W0 is None:
        return np.zeros((d, n_local))
    V = np.asarray(W0, dtype=np.float64)
    if V.shape != (d, n_local):
        raise ValueError(
            f"W0 must be this rank's block of shape (n_features, n_local_tasks) = ({d}, "
            f"{n_local}); got {V.shape}."
        )
    return V.copy()
