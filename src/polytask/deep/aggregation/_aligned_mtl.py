"""Aligned-MTL: align the principal components of the gradient system."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from ._base import Array, GramianAggregator, Weighting

AlignedScaleMode = Literal["min", "median", "rmse"]
_SCALE_MODES: tuple[str, ...] = ("min", "median", "rmse")


def alignment_matrix(gramian: Array, scale_mode: str, eps: float) -> Array:
    r"""The matrix ``B`` with aligned gradients :math:`\hat J = B J` (see the class).

    :math:`B = \sigma\, V_r \Lambda_r^{-1/2} V_r^\top` from the eigendecomposition
    :math:`G = V \Lambda V^\top`, keeping the ``r`` eigenvalues above
    :math:`m\,\varepsilon\,\lambda_{\max}` (``ε`` of the input dtype); :math:`\sigma^2`
    is the smallest kept eigenvalue (``"min"``), their median or their mean
    (``"rmse"``).  A zero Gramian gives ``B = 0``.
    """
    m = gramian.shape[0]
    eigvals, eigvecs = np.linalg.eigh(gramian)
    top = float(np.max(eigvals, initial=0.0))
    if top <= 0.0:
        return np.zeros((m, m))
    keep = eigvals > m * eps * top
    lam, vec = eigvals[keep], eigvecs[:, keep]
    if scale_mode == "min":
        sigma_sq = float(np.min(lam))
    elif scale_mode == "median":
        sigma_sq = float(np.median(lam))
    else:
        sigma_sq = float(np.mean(lam))
    result: Array = (vec * np.sqrt(sigma_sq / lam)) @ vec.T
    return result


class AlignedMTLWeighting(Weighting):
    r"""Weights of Aligned-MTL, which gives the gradient system condition number 1.

    The aligned Jacobian :math:`\hat J` is the closest matrix to ``J`` (Procrustes) with
    orthogonal rows of equal norm :math:`\sigma`: with :math:`J = U \Sigma V^\top`,
    :math:`\hat J = \sigma U V^\top`.  In Gramian terms, with
    :math:`G = U \Lambda U^\top`,

    .. math:: \hat J = B J, \qquad B = \sigma\, U \Lambda^{-1/2} U^\top,
       \qquad \hat J \hat J^\top = \sigma^2 I,

    and the update :math:`\hat J^\top \omega = J^\top (B \omega)` for task preferences
    :math:`\omega` has weights :math:`w = B\omega`.  The paper rescales by the smallest
    singular value, :math:`\sigma = \sqrt{\lambda_{\min}}` (``scale_mode="min"``); the
    authors' code also offers the median and the root mean square.  Eigenvalues below
    :math:`m\,\varepsilon\,\lambda_{\max}` are treated as 0: for a rank-``r`` system
    the aligned gradients are the orthogonal projection scaled by :math:`\sigma`
    (:math:`\hat J \hat J^\top = \sigma^2 U_r U_r^\top`).  A zero Gramian gives zero
    weights.

    Parameters
    ----------
    scale_mode : {"min", "median", "rmse"}, default="min"
        How :math:`\sigma^2` is taken from the non-zero eigenvalues of ``G``.
    pref_vector : sequence of float, optional
        Task preferences :math:`\omega`; default all ones (the sum of the aligned
        gradients, as in the authors' code).  Its length must match the number of tasks.

    Raises
    ------
    ValueError
        If ``scale_mode`` is unknown or ``pref_vector`` is empty or not finite (its
        length is checked at call time).

    References
    ----------
    .. [1] D. Senushkin, N. Patakin, A. Kuznetsov and A. Konushin, "Independent Component
       Alignment for Multi-Task Learning", CVPR 2023.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.aggregation import AlignedMTLWeighting
    >>> gramian = torch.tensor([[1.0, 0.0], [0.0, 4.0]])
    >>> [round(w, 4) for w in AlignedMTLWeighting()(gramian).tolist()]
    [1.0, 0.5]
    """

    def __init__(
        self, scale_mode: AlignedScaleMode = "min", pref_vector: Sequence[float] | None = None
    ) -> None:
        if scale_mode not in _SCALE_MODES:
            raise ValueError(f"scale_mode must be one of {_SCALE_MODES}, got {scale_mode!r}.")
        pref: tuple[float, ...] | None = None
        if pref_vector is not None:
            pref = tuple(float(x) for x in pref_vector)
            if len(pref) == 0 or not all(math.isfinite(x) for x in pref):
                raise ValueError(f"pref_vector must be a non-empty sequence of finite "
                                 f"floats, got {pref_vector!r}.")
        self._scale_mode = scale_mode
        self._pref_vector = pref
        self._freeze()

    @property
    def scale_mode(self) -> AlignedScaleMode:
        """How the common singular value is chosen."""
        return self._scale_mode

    @property
    def pref_vector(self) -> tuple[float, ...] | None:
        """Task preferences (``None``: all ones)."""
        return self._pref_vector

    def _params(self) -> dict[str, Any]:
        return {"scale_mode": self._scale_mode, "pref_vector": self._pref_vector}

    def _solve(self, gramian: Array, eps: float) -> Array:
        m = gramian.shape[0]
        if self._pref_vector is None:
            pref = np.ones(m)
        elif len(self._pref_vector) != m:
            raise ValueError(f"pref_vector has {len(self._pref_vector)} entries but the "
                             f"gramian has {m} tasks.")
        else:
            pref = np.asarray(self._pref_vector, dtype=np.float64)
        result: Array = alignment_matrix(gramian, self._scale_mode, eps) @ pref
        return result


class AlignedMTL(GramianAggregator[AlignedMTLWeighting]):
    r"""Aligned-MTL: the sum of the aligned task gradients :math:`\hat J^\top \omega`.

    The aligned gradients are orthogonal with equal norm (condition number 1) and as
    close as possible to the original ones; see :class:`AlignedMTLWeighting`.  Linear
    under positive scaling of ``J``; invariant to the order of the tasks with the
    default preferences.  A single task gives ``d = g_1``.

    Parameters
    ----------
    scale_mode : {"min", "median", "rmse"}, default="min"
        How the common singular value is chosen.
    pref_vector : sequence of float, optional
        Task preferences; default all ones.

    Raises
    ------
    ValueError
        If ``scale_mode`` or ``pref_vector`` is invalid.

    References
    ----------
    .. [1] D. Senushkin, N. Patakin, A. Kuznetsov and A. Konushin, "Independent Component
       Alignment for Multi-Task Learning", CVPR 2023.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.aggregation import AlignedMTL
    >>> d = AlignedMTL()(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
    >>> [round(x, 4) for x in d.tolist()]
    [1.0, 1.0]
    """

    def __init__(
        self, scale_mode: AlignedScaleMode = "min", pref_vector: Sequence[float] | None = None
    ) -> None:
        super().__init__(AlignedMTLWeighting(scale_mode, pref_vector))
