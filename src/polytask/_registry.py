"""The one registry that maps configuration names to polytask classes and functions.

Library code receives objects, never names (DESIGN: "the CLI maps names to classes in
one registry").  Experiment configuration files name their dataset generator,
featuriser, linear estimator, deep architecture, training method and optimizer; this
module, and only this module, turns those names into the callables.  Each registry is
returned by a cached function so that torch is imported only when a deep name is used.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from polytask._typing import TaskKind

_SKLEARN_FIXED = ("solver", "warm_start")


def signature_params(fn: Callable[..., Any], reserved: Sequence[str] = ()) -> tuple[str, ...]:
    """Names of the keyword parameters of ``fn`` a configuration may set.

    Parameters
    ----------
    fn : callable
        A function or class.
    reserved : sequence of str
        Parameters the runner sets itself (left out).

    Returns
    -------
    tuple of str

    Examples
    --------
    >>> def f(x, *, a=1, b=2): ...
    >>> signature_params(f, reserved=("x",))
    ('a', 'b')
    """
    out = []
    for name, p in inspect.signature(fn).parameters.items():
        if name in reserved or name == "self":
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        out.append(name)
    return tuple(out)


@dataclass(frozen=True)
class FunctionEntry:
    """A registered function: a data generator, featuriser, architecture or optimizer.

    Parameters
    ----------
    fn : callable
        The function or class.
    description : str
        One line for listings.
    reserved : tuple of str
        Parameters set by the runner, not by the configuration.
    """

    fn: Callable[..., Any]
    description: str
    reserved: tuple[str, ...] = ()

    @property
    def params(self) -> tuple[str, ...]:
        """Parameters a configuration may set."""
        return signature_params(self.fn, self.reserved)


@dataclass(frozen=True)
class LinearEntry:
    """A registered linear multi-task estimator (regression and, if any, classification).

    Parameters
    ----------
    regressor : type
        The estimator for regression tasks.
    classifier : type or None
        The estimator for binary tasks.
    description : str
        One line for listings.
    fixed : mapping
        Parameters held fixed (e.g. ``alpha=0`` makes mean-regularised MTL plain ridge).
    """

    regressor: type
    classifier: type | None
    description: str
    fixed: Mapping[str, Any] = field(default_factory=dict)

    @property
    def params(self) -> tuple[str, ...]:
        """Parameters a configuration may set (and tune by cross-validation)."""
        names = signature_params(self.regressor)
        return tuple(n for n in names if n not in self.fixed and n not in _SKLEARN_FIXED)

    def build(self, kind: TaskKind, params: Mapping[str, Any], solver: Any = None) -> Any:
        """A new estimator for tasks of ``kind`` with ``params`` (and ``solver`` if given).

        Raises
        ------
        ValueError
            If the kind is neither regression nor binary, or has no estimator here.
        """
        if kind == "regression":
            cls = self.regressor
        elif kind == "binary" and self.classifier is not None:
            cls = self.classifier
        else:
            raise ValueError(f"{self.regressor.__name__} cannot fit {kind} tasks; linear "
                             "models fit regression (and most of them binary) tasks")
        if solver is not None and "solver" not in signature_params(cls):
            raise ValueError(f"{cls.__name__} takes no solver (it runs its own fitting "
                             "algorithm); remove the model's 'solver' entry")
        extra = {} if solver is None else {"solver": solver}
        return cls(**{**self.fixed, **params, **extra})


@dataclass(frozen=True)
class MethodEntry:
    """A registered deep multi-task method (loss weighting or gradient aggregator).

    Parameters
    ----------
    cls : type
        The method's class.
    family : {"weighting", "aggregator"}
        Loss weightings hold state and need the task names; aggregators are stateless.
    description : str
        One line for listings.
    tasks_arg : str or None
        Keyword receiving the task names.
    seeded : bool
        Whether the class takes a ``generator`` (seeded by the runner).
    """

    cls: type
    family: Literal["weighting", "aggregator"]
    description: str
    tasks_arg: str | None = None
    seeded: bool = False

    @property
    def params(self) -> tuple[str, ...]:
        """Parameters a configuration may set."""
        reserved = tuple(a for a in (self.tasks_arg, "generator" if self.seeded else None) if a)
        return signature_params(self.cls, reserved)

    def build(self, task_names: Sequence[str], params: Mapping[str, Any], seed: int) -> Any:
        """A new method object for ``task_names``; its generator seeded with ``seed``."""
        import torch

        kwargs = dict(params)
        if self.tasks_arg is not None:
            kwargs[self.tasks_arg] = list(task_names)
        if self.seeded:
            kwargs["generator"] = torch.Generator().manual_seed(int(seed))
        return self.cls(**kwargs)


@functools.cache
def synthetic_generators() -> Mapping[str, FunctionEntry]:
    """Synthetic data generators: ``dataset.synthetic``.

    Examples
    --------
    >>> sorted(synthetic_generators())
    ['clustered', 'dirty', 'group_sparse', 'low_rank', 'mmoe']
    """
    from polytask.data import synthetic as s

    reserved = ("random_state",)
    return MappingProxyType({
        "mmoe": FunctionEntry(s.mmoe_synthetic, "non-linear tasks of given weight cosine "
                              "(Ma et al. 2018)", reserved),
        "group_sparse": FunctionEntry(s.group_sparse, "shared relevant features", reserved),
        "low_rank": FunctionEntry(s.low_rank, "weight vectors in a low-dimensional subspace",
                                  reserved),
        "clustered": FunctionEntry(s.clustered, "planted clusters of similar tasks", reserved),
        "dirty": FunctionEntry(s.dirty, "shared plus task-specific features", reserved),
    })


def _morgan(smiles: Sequence[str], radius: int = 2, n_bits: int = 1024) -> Any:
    """Morgan fingerprints as a float matrix (unparsable molecules give zero rows)."""
    from polytask.data import morgan_fingerprints

    return morgan_fingerprints(smiles, radius=radius, n_bits=n_bits)[0].astype(float)


def _conll_window(train: Any, test: Any = None, window: int = 2, max_vocab: int = 20000,
                  min_count: int = 1) -> Any:
    """CoNLL-2000 token windows: ``train`` data, or ``(train, test)`` given a test part.

    The ``embedding`` stem then needs ``n_ids = max_vocab + 7`` (see
    :func:`polytask.data.conll_windows`).
    """
    from polytask.data import conll_windows

    train_data, test_data, _ = conll_windows(train, test, window=window, max_vocab=max_vocab,
                                             min_count=min_count)
    return train_data if test is None else (train_data, test_data)


@functools.cache
def featurizers() -> Mapping[str, FunctionEntry]:
    """Featurisers of raw inputs (SMILES, tagged sentences): ``dataset.featurizer``.

    ``morgan`` featurises the SMILES of a molecule set; ``conll_window`` turns the
    tagged sentences of ``conll2000`` into token windows of ids (``train`` and ``test``
    are the corpora, set by the loader).

    Examples
    --------
    >>> featurizers()["morgan"].params
    ('radius', 'n_bits')
    >>> featurizers()["conll_window"].params
    ('window', 'max_vocab', 'min_count')
    """
    return MappingProxyType({
        "morgan": FunctionEntry(_morgan, "Morgan/ECFP bit fingerprints (RDKit)", ("smiles",)),
        "conll_window": FunctionEntry(_conll_window, "CoNLL-2000 token windows of word and "
                                      "capitalisation ids", ("train", "test")),
    })


@functools.cache
def linear_models() -> Mapping[str, LinearEntry]:
    """Linear multi-task estimators: ``models[i].model`` of ``type: linear``.

    Examples
    --------
    >>> linear_models()["ridge"].params[:1]
    ('beta',)
    """
    from polytask import linear as L

    return MappingProxyType({
        "ridge": LinearEntry(L.MeanRegularizedRegressor, L.MeanRegularizedClassifier,
                             "ridge: beta ||W||_F^2 (no coupling of tasks)", {"alpha": 0.0}),
        "mean_regularized": LinearEntry(L.MeanRegularizedRegressor,
                                        L.MeanRegularizedClassifier,
                                        "pull towards the mean model (Evgeniou & Pontil 2004)"),
        "l21": LinearEntry(L.L21Regressor, L.L21Classifier, "joint feature selection (L2,1)"),
        "trace_norm": LinearEntry(L.TraceNormRegressor, L.TraceNormClassifier,
                                  "low-rank W (trace norm)"),
        "dirty": LinearEntry(L.DirtyRegressor, L.DirtyClassifier,
                             "shared plus task-specific features (Jalali et al. 2010)"),
        "clustered": LinearEntry(L.ClusteredRegressor, L.ClusteredClassifier,
                                 "convex clustered MTL (Zhou, Chen & Ye 2011)"),
        "hierarchical_bayes": LinearEntry(L.HierarchicalBayesRegressor, None,
                                          "task weights around a mean, variances by "
                                          "empirical Bayes (EM; regression only)"),
    })


@functools.cache
def solvers() -> Mapping[str, FunctionEntry]:
    """Solvers of the linear estimators: ``models[i].solver`` (default: the estimator's).

    Examples
    --------
    >>> sorted(solvers()), "max_iter" in solvers()["fista"].params
    (['admm', 'fista'], True)
    """
    from polytask import linear as L

    return MappingProxyType({
        "fista": FunctionEntry(L.FISTA, "accelerated proximal gradient (FISTA)"),
        "admm": FunctionEntry(L.ADMM, "alternating direction method of multipliers"),
    })


@functools.cache
def architectures() -> Mapping[str, FunctionEntry]:
    """Deep architectures built from sizes: ``models[i].architecture``.

    Examples
    --------
    >>> architectures()["shared_bottom"].params
    ('hidden', 'tower', 'dropout', 'stem')
    """
    from polytask import _builders as b

    reserved = ("in_features", "outputs")
    return MappingProxyType({
        "shared_bottom": FunctionEntry(b.shared_bottom, "hard parameter sharing", reserved),
        "mmoe": FunctionEntry(b.mmoe, "multi-gate mixture of experts", reserved),
        "cgc": FunctionEntry(b.cgc, "customized gate control", reserved),
        "ple": FunctionEntry(b.ple, "progressive layered extraction", reserved),
        "cross_stitch": FunctionEntry(b.cross_stitch, "cross-stitch networks", reserved),
        "soft_sharing": FunctionEntry(b.soft_sharing, "soft parameter sharing", reserved),
    })


@functools.cache
def methods() -> Mapping[str, MethodEntry]:
    """Deep training methods: ``models[i].method``.

    Examples
    --------
    >>> methods()["mgda"].family, methods()["dwa"].params
    ('aggregator', ('temperature',))
    """
    from polytask.deep import aggregation as A
    from polytask.deep import weighting as W

    def w(cls: type, text: str, arg: str = "tasks", seeded: bool = False) -> MethodEntry:
        return MethodEntry(cls, "weighting", text, arg, seeded)

    def a(cls: type, text: str, seeded: bool = False) -> MethodEntry:
        return MethodEntry(cls, "aggregator", text, None, seeded)

    return MappingProxyType({
        "ew": w(W.EqualWeighting, "equal weighting: sum of the losses"),
        "static": w(W.StaticWeighting, "fixed weights", arg="task_names"),
        "uw": w(W.UncertaintyWeighting, "uncertainty weighting (Kendall et al. 2018)"),
        "gradnorm": w(W.GradNorm, "GradNorm (Chen et al. 2018)"),
        "dwa": w(W.DWA, "dynamic weight average (Liu et al. 2019)"),
        "rlw": w(W.RLW, "random loss weighting (Lin et al. 2022)", seeded=True),
        "famo": w(W.FAMO, "FAMO (Liu et al. 2023)"),
        "dbmtl": w(W.DBMTL, "dual-balancing MTL (Lin et al. 2023)"),
        "mean": a(A.Mean, "mean of the task gradients"),
        "sum": a(A.Sum, "sum of the task gradients"),
        "mgda": a(A.MGDA, "multiple-gradient descent (Sener & Koltun 2018)"),
        "pcgrad": a(A.PCGrad, "gradient surgery (Yu et al. 2020)", seeded=True),
        "gradvac": a(A.GradVac, "gradient vaccine (Wang et al. 2021)", seeded=True),
        "cagrad": a(A.CAGrad, "conflict-averse gradient (Liu et al. 2021)"),
        "imtl": a(A.IMTLG, "impartial MTL, gradient part (Liu et al. 2021)"),
        "nash_mtl": a(A.NashMTL, "Nash bargaining (Navon et al. 2022)"),
        "aligned_mtl": a(A.AlignedMTL, "Aligned-MTL (Senushkin et al. 2023)"),
        "upgrad": a(A.UPGrad, "UPGrad (Quinton & Rey 2024)"),
    })


@functools.cache
def optimizers() -> Mapping[str, FunctionEntry]:
    """Optimizers: ``models[i].optimizer``.

    Examples
    --------
    >>> sorted(optimizers())
    ['adam', 'adamw', 'sgd']
    """
    import torch

    reserved = ("params", "lr")
    return MappingProxyType({
        "adam": FunctionEntry(torch.optim.Adam, "Adam", reserved),
        "adamw": FunctionEntry(torch.optim.AdamW, "AdamW", reserved),
        "sgd": FunctionEntry(torch.optim.SGD, "stochastic gradient descent", reserved),
    })


__all__ = [
    "FunctionEntry",
    "LinearEntry",
    "MethodEntry",
    "architectures",
    "featurizers",
    "linear_models",
    "methods",
    "optimizers",
    "signature_params",
    "solvers",
    "synthetic_generators",
]
