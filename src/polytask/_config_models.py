"""The ``models`` and ``relate`` sections of an experiment configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from polytask import _config_checks as c
from polytask import _registry as reg
from polytask._config_checks import ConfigError

LinearFit = Literal["joint", "per_task", "pooled"]
LINEAR_FITS: tuple[LinearFit, ...] = ("joint", "per_task", "pooled")
MODES = ("parameter", "representation")
MEASURES = ("gradient", "affinity", "linear", "transfer")


@dataclass(frozen=True)
class LinearModelConfig:
    """A linear model of the experiment.

    Attributes
    ----------
    name : str
        Method name in the result table.
    model : str
        Key of :func:`polytask._registry.linear_models`.
    fit : {"joint", "per_task", "pooled"}
        One multi-task model; one model per task (single-task learning); or one model
        on all tasks' data pooled as one task.
    params : dict
        Fixed estimator parameters.
    cv : dict of str to tuple of float
        Grids tuned by cross-validation on the training part (product of the grids).
    cv_folds : int
        Number of folds.
    baseline : str
        The method this one is compared with.
    solver : str or None
        Key of :func:`polytask._registry.solvers`; None keeps the estimator's choice.
    solver_params : dict
        Parameters of the solver (``max_iter``, ``tol``, ...).
    """

    name: str
    model: str
    fit: LinearFit = "joint"
    params: dict[str, Any] = field(default_factory=dict)
    cv: dict[str, tuple[float, ...]] = field(default_factory=dict)
    cv_folds: int = 3
    baseline: str = ""
    solver: str | None = None
    solver_params: dict[str, Any] = field(default_factory=dict)

    def estimator(self, kind: Any, params: dict[str, Any]) -> Any:
        """A new estimator of this model for tasks of ``kind``, with ``params``."""
        solver = None
        if self.solver is not None:
            solver = reg.solvers()[self.solver].fn(**self.solver_params)
        return reg.linear_models()[self.model].build(kind, params, solver)

    @property
    def type(self) -> str:
        """``"linear"``."""
        return "linear"

    @property
    def single_task(self) -> bool:
        """Whether every task gets its own model."""
        return self.fit == "per_task"


@dataclass(frozen=True)
class DeepModelConfig:
    """A deep model of the experiment: architecture × method, trained by the Trainer.

    Attributes
    ----------
    name : str
        Method name in the result table.
    architecture : str
        Key of :func:`polytask._registry.architectures`.
    arch_params : dict
        Sizes of the architecture.
    method : str
        Key of :func:`polytask._registry.methods` (ignored when ``stl``).
    method_params : dict
        Parameters of the method.
    stl : bool
        Train one model per task with the same architecture (single-task baseline).
    optimizer : str
        Key of :func:`polytask._registry.optimizers`.
    optimizer_params : dict
        Extra optimizer parameters (e.g. ``weight_decay``).
    lr : float
        Learning rate.
    epochs, batch_size : int
        Training length and batch size.
    mode : {"parameter", "representation"}
        Where gradient methods take the per-task gradients.
    patience : int or None
        Early stopping on the validation part.
    baseline : str
        The method this one is compared with.
    """

    name: str
    architecture: str = "shared_bottom"
    arch_params: dict[str, Any] = field(default_factory=dict)
    method: str = "ew"
    method_params: dict[str, Any] = field(default_factory=dict)
    stl: bool = False
    optimizer: str = "adam"
    optimizer_params: dict[str, Any] = field(default_factory=dict)
    lr: float = 1e-3
    epochs: int = 10
    batch_size: int = 64
    mode: str = "parameter"
    patience: int | None = None
    baseline: str = ""

    @property
    def type(self) -> str:
        """``"deep"``."""
        return "deep"

    @property
    def single_task(self) -> bool:
        """Whether every task gets its own model."""
        return self.stl


ModelConfig = LinearModelConfig | DeepModelConfig

_COMMON = ("name", "type", "baseline")
_LINEAR_KEYS = (*_COMMON, "model", "fit", "params", "cv", "cv_folds", "solver")
_DEEP_KEYS = (*_COMMON, "architecture", "arch_params", "method", "method_params", "stl",
              "optimizer", "optimizer_params", "lr", "epochs", "batch_size", "mode", "patience")


def parse_linear(m: dict[str, Any], path: str, name: str | None) -> LinearModelConfig:
    """Read a ``type: linear`` model."""
    c.check_keys(m, path, _LINEAR_KEYS)
    if "model" not in m:
        raise ConfigError(f"{c.join(path, 'model')}: required; known: "
                          f"{sorted(reg.linear_models())}")
    key = c.choice(m["model"], c.join(path, "model"), reg.linear_models())
    entry = reg.linear_models()[key]
    fit = c.choice(m.get("fit", "joint"), c.join(path, "fit"), LINEAR_FITS)
    params = c.plain(c.params(m.get("params"), c.join(path, "params"), entry.params),
                     c.join(path, "params"))
    grid_path = c.join(path, "cv")
    grids = c.params(m.get("cv"), grid_path, entry.params)
    cv: dict[str, tuple[float, ...]] = {}
    for p, values in grids.items():
        vp = c.join(grid_path, p)
        items = c.sequence(values, vp)
        if not items:
            raise ConfigError(f"{vp}: expected a non-empty list of numbers")
        cv[p] = tuple(c.number(v, c.join(vp, i)) for i, v in enumerate(items))
    both = sorted(set(cv) & set(params))
    if both:
        raise ConfigError(f"{c.join(path, 'cv')}.{both[0]}: also fixed in params; give a "
                          "value or a grid, not both")
    folds = c.integer(m.get("cv_folds", 3), c.join(path, "cv_folds"), minimum=2)
    solver, solver_params = None, {}
    if m.get("solver") is not None:
        sp = c.join(path, "solver")
        raw = m["solver"]
        sm = {"name": raw} if isinstance(raw, str) else c.mapping(raw, sp)
        c.check_keys(sm, sp, ("name", "params"))
        solver = c.choice(sm.get("name"), c.join(sp, "name"), reg.solvers())
        solver_params = c.plain(c.params(sm.get("params"), c.join(sp, "params"),
                                         reg.solvers()[solver].params), c.join(sp, "params"))
        _check_build(c.join(sp, "params"), lambda: reg.solvers()[solver].fn(**solver_params))
    return LinearModelConfig(name=name or f"{key} ({fit})", model=key, fit=fit,  # type: ignore[arg-type]
                             params=params, cv=cv, cv_folds=folds,
                             baseline=_baseline(m, path), solver=solver,
                             solver_params=solver_params)


def _check_build(path: str, build: Any) -> None:
    try:
        build()
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{path}: {err}") from None


def parse_deep(m: dict[str, Any], path: str, name: str | None,
               defaults: dict[str, Any] | None = None) -> DeepModelConfig:
    """Read a ``type: deep`` model (``defaults`` fill keys that are absent)."""
    c.check_keys(m, path, _DEEP_KEYS)
    m = {**(defaults or {}), **m}
    p = c.join
    arch = c.choice(m.get("architecture", "shared_bottom"), p(path, "architecture"),
                    reg.architectures())
    arch_entry = reg.architectures()[arch]
    arch_params = c.plain(c.params(m.get("arch_params"), p(path, "arch_params"),
                                   arch_entry.params), p(path, "arch_params"))
    in_features = _stem_in_features(arch_params.get("stem"), p(path, "arch_params"))
    _check_build(p(path, "arch_params"),
                 lambda: arch_entry.fn(in_features, {"a": 1, "b": 1}, **arch_params))
    stl = c.boolean(m.get("stl", False), p(path, "stl"))
    method = c.choice(m.get("method", "ew"), p(path, "method"), reg.methods())
    entry = reg.methods()[method]
    method_params = c.plain(c.params(m.get("method_params"), p(path, "method_params"),
                                     entry.params), p(path, "method_params"))
    if entry.tasks_arg is None:
        _check_build(p(path, "method_params"), lambda: entry.build(["a", "b"], method_params, 0))
    opt = c.choice(m.get("optimizer", "adam"), p(path, "optimizer"), reg.optimizers())
    opt_params = c.plain(c.params(m.get("optimizer_params"), p(path, "optimizer_params"),
                                  reg.optimizers()[opt].params), p(path, "optimizer_params"))
    mode = c.choice(m.get("mode", "parameter"), p(path, "mode"), MODES)
    default = f"STL {arch}" if stl else f"{arch} {method}"
    return DeepModelConfig(
        name=name or default, architecture=arch, arch_params=arch_params, method=method,
        method_params=method_params, stl=stl, optimizer=opt, optimizer_params=opt_params,
        lr=c.number(m.get("lr", 1e-3), p(path, "lr"), low=0.0, strict=True),
        epochs=c.integer(m.get("epochs", 10), p(path, "epochs"), minimum=1),
        batch_size=c.integer(m.get("batch_size", 64), p(path, "batch_size"), minimum=1),
        mode=mode,
        patience=c.optional(c.integer, m.get("patience"), p(path, "patience"), minimum=1),
        baseline=_baseline(m, path))


def _stem_in_features(stem: object, path: str) -> int:
    """Validate ``arch_params.stem``; the input width a test build of the model needs.

    A LeNet stem fixes the width (``height * width``); without a stem, or with an
    embedding stem, any width works and 2 keeps the test build small.
    """
    if stem is None:
        return 2
    from polytask.deep._architectures.stems import StemSpecError, parse_stem

    try:
        spec = parse_stem(stem)
    except StemSpecError as err:
        raise ConfigError(f"{c.join(path, err.key)}: {err.reason}") from None
    return spec.in_features or 2


def _baseline(m: dict[str, Any], path: str) -> str:
    value = m.get("baseline")
    return "" if value is None else c.string(value, c.join(path, "baseline"))


def parse_model(value: object, path: str) -> ModelConfig:
    """Read one entry of ``models``."""
    m = c.mapping(value, path)
    kind = c.choice(m.get("type"), c.join(path, "type"), ("linear", "deep"))
    name = c.optional(c.string, m.get("name"), c.join(path, "name"))
    if kind == "linear":
        return parse_linear(m, path, name)
    return parse_deep(m, path, name)


@dataclass(frozen=True)
class RelateConfig:
    """The ``relate`` section: relatedness measures, grouping and negative transfer.

    Attributes
    ----------
    seeds : tuple of int
        Seeds of the measurements and of the group trainings.
    model : DeepModelConfig
        The model of the short multi-task training that measures gradient similarity
        and lookahead affinity (its method must be a gradient aggregator).
    train : DeepModelConfig
        The model trained on the recommended groups, on all tasks and per task.
    gradient : bool
        Measure gradient cosine and conflict frequency.
    affinity_every : int or None
        Measure lookahead affinity every this many steps (None: off).
    linear : LinearModelConfig or None
        Fit this linear model and read the cosine of its task weight vectors.
    transfer_pairs : "all", int or None
        Pairwise transfer (None: off): every pair, or a budget of pairs.
    k : int
        Budget of models for the grouping.
    measure : str
        Which matrix drives the grouping.
    overlapping : bool
        TAG's overlapping groups (else a partition).
    alpha : float
        Level of the negative-transfer test.
    test : {"auto", "t", "wilcoxon"}
        The paired test.
    """

    seeds: tuple[int, ...]
    model: DeepModelConfig
    train: DeepModelConfig
    gradient: bool = True
    affinity_every: int | None = 1
    linear: LinearModelConfig | None = None
    transfer_pairs: str | int | None = None
    k: int = 2
    measure: str = "affinity"
    overlapping: bool = False
    alpha: float = 0.05
    test: str = "auto"


_RELATE_KEYS = ("seeds", "model", "train", "gradient", "affinity", "linear", "transfer",
                "grouping", "negative_transfer")


def _switch(value: object, path: str) -> dict[str, Any] | None:
    """``false``/absent → None, ``true`` → {}, a mapping → itself."""
    if value is None or value is False:
        return None
    if value is True:
        return {}
    return c.mapping(value, path)


def parse_relate(value: object, seeds: tuple[int, ...], parse_seeds: Any) -> RelateConfig:
    """Read the ``relate`` section (``seeds``: the experiment's, the default)."""
    path = "relate"
    m = c.mapping(value, path)
    c.check_keys(m, path, _RELATE_KEYS)
    p = c.join
    short = parse_deep(c.mapping(m.get("model"), p(path, "model")), p(path, "model"),
                       "relate model", {"method": "mean", "epochs": 3})
    if short.stl or reg.methods()[short.method].family != "aggregator":
        aggregators = sorted(k for k, e in reg.methods().items() if e.family == "aggregator")
        raise ConfigError(f"relate.model.method: the short run needs a gradient aggregator "
                          f"to see the task gradients; got {short.method!r}; known: "
                          f"{aggregators}")
    train = (parse_deep(c.mapping(m["train"], p(path, "train")), p(path, "train"), "group model")
             if m.get("train") is not None else short)
    gradient = c.boolean(m.get("gradient", True), p(path, "gradient"))
    aff = _switch(m.get("affinity", True), p(path, "affinity"))
    every = None
    if aff is not None:
        c.check_keys(aff, p(path, "affinity"), ("every",))
        every = c.integer(aff.get("every", 1), p(p(path, "affinity"), "every"), minimum=1)
    lin_m = _switch(m.get("linear"), p(path, "linear"))
    linear = None
    if lin_m is not None:
        lin_m = {"model": "trace_norm", **lin_m, "fit": "joint"}
        linear = parse_linear(lin_m, p(path, "linear"), "relate linear")
    tr = _switch(m.get("transfer"), p(path, "transfer"))
    pairs: str | int | None = None
    if tr is not None:
        c.check_keys(tr, p(path, "transfer"), ("pairs",))
        raw = tr.get("pairs", "all")
        pp = p(p(path, "transfer"), "pairs")
        pairs = "all" if raw == "all" else c.integer(raw, pp, minimum=1)
    grouping = c.mapping(m.get("grouping"), p(path, "grouping"))
    c.check_keys(grouping, p(path, "grouping"), ("k", "measure", "overlapping"))
    enabled = [name for name, on in zip(MEASURES, (gradient, every is not None,
                                                    linear is not None, pairs is not None),
                                        strict=True) if on]
    if not enabled:
        raise ConfigError("relate: every measure is off; enable at least one of "
                          f"{list(MEASURES)}")
    default_measure = "affinity" if "affinity" in enabled else enabled[0]
    measure = c.choice(grouping.get("measure", default_measure), p(p(path, "grouping"),
                                                                   "measure"), enabled)
    neg = c.mapping(m.get("negative_transfer"), p(path, "negative_transfer"))
    c.check_keys(neg, p(path, "negative_transfer"), ("alpha", "test"))
    run_seeds = (parse_seeds(m["seeds"], p(path, "seeds")) if m.get("seeds") is not None
                 else seeds)
    return RelateConfig(
        seeds=run_seeds, model=short, train=train, gradient=gradient, affinity_every=every,
        linear=linear, transfer_pairs=pairs,
        k=c.integer(grouping.get("k", 2), p(p(path, "grouping"), "k"), minimum=1),
        measure=measure,
        overlapping=c.boolean(grouping.get("overlapping", False),
                              p(p(path, "grouping"), "overlapping")),
        alpha=c.number(neg.get("alpha", 0.05), p(p(path, "negative_transfer"), "alpha"),
                       low=0.0, high=1.0, strict=True),
        test=c.choice(neg.get("test", "auto"), p(p(path, "negative_transfer"), "test"),
                      ("auto", "t", "wilcoxon")))


__all__ = ["DeepModelConfig", "LinearModelConfig", "ModelConfig", "RelateConfig"]
