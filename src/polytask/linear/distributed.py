"""Linear multi-task learning with the tasks sharded over ``torch.distributed`` ranks.

Each rank owns a contiguous block of tasks: their data (its columns of ``Y`` for a
shared design, or its tasks' ``(X_t, y_t)``) and their columns of ``W``. The solver is
:class:`~polytask.linear.FISTA`'s iteration run in lockstep: the datafit is a sum over
tasks, so its gradient is local; the penalties exchange only what couples the tasks
(row statistics for :class:`~polytask.linear.L21` and :class:`~polytask.linear.L1Linf`,
the mean task for :class:`~polytask.linear.MeanRegularized`, the whole ``W`` for the
SVD of :class:`~polytask.linear.TraceNorm`), and every step-size, restart and stopping
decision comes from all-reduced numbers. N ranks therefore reach the single-process
solution, to the solver's tolerance.

Communication per iteration: a few all-reductions of scalars or of ``n_features``
vectors; for ``L1Linf`` a few more, since the threshold of each row's l1-ball projection
is found exactly from reduced sums and counts (Michelot's algorithm) instead of
gathering the rows; for ``TraceNorm`` an all-gather of ``W`` (``n_features x n_tasks``),
whose SVD every rank computes. With a shared design every rank needs the whole ``X``.
Input errors found on any rank (invalid data, a rank without tasks, different settings)
are raised on every rank, so that none is left waiting in a collective.

Supported penalties: ``Lasso``, ``L21``, ``L1Linf``, ``TraceNorm``, ``Ridge`` and
``MeanRegularized``, alone or as a list with at most one non-smooth (e.g.
``[L21(0.1), Ridge(0.01)]``); datafits: ``SquaredLoss`` and ``LogisticLoss`` (any datafit
that is a sum over tasks). The ranks communicate CPU arrays, so the process group must
have a CPU backend (gloo). torch is imported when a fit starts, never by
``import polytask.linear``; import this module explicitly.

Launch one process per rank, e.g. save this as ``fit_sharded.py`` and run
``torchrun --nproc_per_node 2 fit_sharded.py``::

    import numpy as np
    import torch.distributed as dist
    from polytask.linear import L21
    from polytask.linear.distributed import fit_distributed, gather_tasks, shard_tasks

    dist.init_process_group("gloo")
    rng = np.random.default_rng(0)  # same seed: every rank builds the same data
    X = rng.normal(size=(100, 20))
    Y = X[:, :5] @ rng.normal(size=(5, 7)) + 0.1 * rng.normal(size=(100, 7))
    mine = shard_tasks(Y.shape[1], dist.get_world_size(), dist.get_rank())
    res = fit_distributed(X, Y[:, mine], L21(alpha=5.0))  # res.W: this rank's tasks
    W = gather_tasks(res.W)  # (20, 7) on every rank
    if dist.get_rank() == 0:
        print(f"objective {res.objective:.6f}, rows used {np.count_nonzero(W.any(1))}")
    dist.destroy_process_group()

In practice every rank would load only its own tasks' data.

References
----------
C. Michelot. A finite algorithm for finding the projection of a point onto the
canonical simplex of R^n. Journal of Optimization Theory and Applications 50(1), 1986.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from polytask._typing import FloatArray
from polytask.linear._datafits import SquaredLoss
from polytask.linear._design import TaskDesign
from polytask.linear._distributed_comm import TaskComm
from polytask.linear._distributed_solver import DistributedFISTA, DistributedResult
from polytask.linear._objective import split_penalties

__all__ = [
    "DistributedFISTA",
    "DistributedResult",
    "fit_distributed",
    "gather_tasks",
    "shard_tasks",
]

FArray = FloatArray


def _check_count(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"shard_tasks: {name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def shard_tasks(n_tasks: int, world_size: int, rank: int) -> slice:
    """The contiguous block of tasks that ``rank`` owns, as balanced as possible.

    The first ``n_tasks % world_size`` ranks get one task more than the others.

    Parameters
    ----------
    n_tasks : int
        Total number of tasks, at least ``world_size``.
    world_size : int
        Number of ranks, ``>= 1``.
    rank : int
        This rank, in ``[0, world_size)``.

    Returns
    -------
    slice
        Global indices of this rank's tasks, e.g. ``Y[:, shard_tasks(...)]``.

    Raises
    ------
    ValueError
        If an argument is not an integer in range, or there are fewer tasks than ranks.

    Examples
    --------
    >>> from polytask.linear.distributed import shard_tasks
    >>> [shard_tasks(5, 2, r) for r in range(2)]
    [slice(0, 3, None), slice(3, 5, None)]
    """
    size = _check_count(world_size, "world_size", 1)
    r = _check_count(rank, "rank", 0)
    n = _check_count(n_tasks, "n_tasks", 1)
    if r >= size:
        raise ValueError(f"shard_tasks: rank must be < world_size={size}; got {rank!r}.")
    if n < size:
        raise ValueError(
            f"shard_tasks: n_tasks={n} is smaller than world_size={size}; every rank needs "
            "at least one task."
        )
    base, extra = divmod(n, size)
    start = r * base + min(r, extra)
    return slice(start, start + base + (r < extra))


def _local_task_count(X: Any, Y: Any) -> int:
    """Number of tasks in this rank's input, without validating it."""
    if isinstance(X, TaskDesign):
        return int(X.n_tasks)
    if isinstance(X, (list, tuple)):
        return len(X)
    shape: tuple[int, ...] = np.shape(Y) if Y is not None else ()
    return int(shape[1]) if len(shape) == 2 else 1


def fit_distributed(
    X: ArrayLike | TaskDesign | Sequence[ArrayLike],
    Y: Any = None,
    penalty: Any = None,
    *,
    datafit: Any = None,
    solver: DistributedFISTA | None = None,
    W0: ArrayLike | None = None,
    group: Any = None,
) -> DistributedResult:
    r"""Fit a regularised linear multi-task model whose tasks are split over the ranks.

    Call it on every rank with that rank's tasks. It minimises, over all tasks,
    ``sum_t c_t f_t(X_t w_t) + pen(W)`` exactly as the single-process solvers do.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), sequence of such arrays, or TaskDesign
        This rank's data: the shared design, or its tasks' designs.
    Y : ndarray of shape (n_samples, n_local_tasks), sequence of (n_samples_t,) arrays, or None
        This rank's labels (``NaN`` = missing in a shared ``Y``); None with a TaskDesign.
    penalty : penalty object or list of penalty objects
        The same on every rank (see the module docstring for the supported ones).
    datafit : datafit object, optional
        Not initialized (a copy is initialized on this rank's data); default
        ``SquaredLoss()``.
    solver : DistributedFISTA, optional
        Default ``DistributedFISTA()``.
    W0 : ndarray of shape (n_features, n_local_tasks), optional
        Warm start of this rank's columns.
    group : ProcessGroup, optional
        The ranks taking part (default: the default group).

    Returns
    -------
    DistributedResult
        ``W`` holds this rank's columns; the scalars are global.

    Raises
    ------
    RuntimeError
        If no process group is initialised
        (``torch.distributed.init_process_group``).
    TypeError
        If ``solver`` is not a :class:`DistributedFISTA`.
    ValueError
        On every rank, if any rank's data are invalid (task indices in its message are
        local to that rank), a rank holds no task, the ranks disagree on the number of
        features or the settings, or a penalty is not supported.

    Examples
    --------
    One rank (launch several with torchrun, see the module docstring):

    >>> import os, shutil, tempfile
    >>> import torch.distributed as dist
    >>> from polytask.linear import L21
    >>> from polytask.linear.distributed import fit_distributed
    >>> tmp = tempfile.mkdtemp()
    >>> dist.init_process_group(
    ...     "gloo", init_method="file://" + os.path.join(tmp, "store"), rank=0, world_size=1)
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(30, 5)), rng.normal(size=(30, 3))
    >>> res = fit_distributed(X, Y, L21(alpha=2.0))
    >>> res.W.shape, list(res.tasks), res.converged
    ((5, 3), [0, 1, 2], True)
    >>> dist.destroy_process_group()
    >>> shutil.rmtree(tmp)
    """
    comm = TaskComm(group, "fit_distributed")
    run = DistributedFISTA() if solver is None else solver
    error: Exception | None = None
    local_fit: Any = None
    prox: Any = None
    smooth: tuple[Any, ...] = ()
    try:
        if not isinstance(run, DistributedFISTA):
            raise TypeError(
                f"solver must be a DistributedFISTA; got {type(run).__name__}. Other "
                "solvers do not run with tasks sharded over ranks."
            )
        prox, smooth = split_penalties(penalty)
        if _local_task_count(X, Y) > 0:
            base = SquaredLoss() if datafit is None else datafit
            if not hasattr(base, "initialize"):
                raise TypeError(f"datafit must be a datafit object; got {type(base).__name__}.")
            local_fit = copy.deepcopy(base).initialize(X, Y)
    except (ValueError, TypeError) as exc:
        error = exc
    if not isinstance(run, DistributedFISTA):
        run = DistributedFISTA()  # only to report the error on every rank
    return run._run(comm, local_fit, prox, smooth, W0, error)


def gather_tasks(W_local: ArrayLike, group: Any = None) -> FArray:
    """Assemble every rank's task columns into the full weight matrix, on every rank.

    Parameters
    ----------
    W_local : ndarray of shape (n_features, n_local_tasks)
        This rank's columns (``DistributedResult.W``).
    group : ProcessGroup, optional
        The ranks taking part (default: the default group).

    Returns
    -------
    ndarray of shape (n_features, n_tasks)
        Columns in rank order (rank 0's tasks first).

    Raises
    ------
    RuntimeError
        If no process group is initialised.
    ValueError
        If ``W_local`` is not 2-D or the ranks' blocks have different numbers of rows.

    Examples
    --------
    >>> import os, shutil, tempfile
    >>> import torch.distributed as dist
    >>> from polytask.linear.distributed import gather_tasks
    >>> tmp = tempfile.mkdtemp()
    >>> dist.init_process_group(
    ...     "gloo", init_method="file://" + os.path.join(tmp, "store"), rank=0, world_size=1)
    >>> gather_tasks(np.ones((2, 3))).shape
    (2, 3)
    >>> dist.destroy_process_group()
    >>> shutil.rmtree(tmp)
    """
    comm = TaskComm(group, "gather_tasks")
    return comm.gather_tasks(W_local)
