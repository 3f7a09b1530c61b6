"""The relatedness measurements of ``polytask relate``, one seed at a time.

- :func:`measure_training` — a short multi-task training driven by the gradient engine
  (:func:`polytask.deep.backward.mtl_backward`); the Gramian the engine forms for the
  update of every step (no extra backward pass) feeds a
  :class:`~polytask.relate.GradientSimilarityTracker`, and every ``every`` steps an
  :class:`~polytask.relate.AffinityTracker` measures the lookahead affinity *before*
  the step (TAG).
- :func:`measure_linear` — the cosine of the task weight vectors of a fitted linear
  multi-task model (:func:`polytask.relate.weight_cosine`).
- :func:`validation_scores` — train a model on some tasks and score them on the
  validation part: the ``fit_score`` of :func:`polytask.relate.pairwise_transfer`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polytask import _registry as reg
from polytask._config_models import DeepModelConfig, LinearModelConfig
from polytask._experiment_data import SplitData
from polytask._fit_deep import build_model, make_trainer, optimizer_factory


def _batches(split: SplitData, batch_size: int, generator: Any) -> Any:
    import torch

    ds = split.train.torch_dataset()
    perm = torch.randperm(len(ds), generator=generator)
    for start in range(0, len(ds), batch_size):
        idx = perm[start:start + batch_size]
        yield ds.x[idx], {t: y[idx] for t, y in ds.targets.items()}


def measure_training(spec: DeepModelConfig, split: SplitData, seed: int, *, gradient: bool,
                     affinity_every: int | None) -> dict[str, Any]:
    """Gradient cosine, conflict frequency and lookahead affinity over a short training.

    The gradient cosine and conflicts are read from the Gramian ``G = J Jᵀ`` of the
    per-task gradients of the shared parameters that
    :func:`~polytask.deep.backward.mtl_backward` returns with each step, so tracking
    them costs no backward pass beyond the training step's own: a Gramian method
    (MGDA, UPGrad, ...) forms ``G`` for its update anyway, and a loss weighting is asked
    for it with ``return_gramian=True`` (one Gramian pass, which a weighting that needs
    gradient norms, such as GradNorm, makes anyway).  Only an aggregator that is not
    Gramian-based needs a separate Gramian pass.

    Parameters
    ----------
    spec : DeepModelConfig
        Model, aggregator, optimizer, learning rate, epochs and batch size.
    split : SplitData
        Trains on ``split.train``.
    seed : int
        Seeds the weights, the batch order and the aggregator.
    gradient : bool
        Track the gradient cosine and conflict frequency.
    affinity_every : int or None
        Measure the lookahead affinity every this many steps (None: never).

    Returns
    -------
    dict
        ``task_names``, ``n_steps`` and, when measured, ``gradient_cosine``,
        ``gradient_conflict``, ``affinity`` (nested lists, ``A[i][j]`` = effect of
        task ``j`` on task ``i``).
    """
    import torch

    from polytask.deep._methods import resolve_method
    from polytask.deep.backward import mtl_backward, task_gramian
    from polytask.relate import AffinityTracker, GradientSimilarityTracker

    tasks = split.tasks
    names = list(tasks.names)
    gen = torch.Generator().manual_seed(int(seed))
    model = build_model(spec, tasks, split.n_features, seed)
    method = reg.methods()[spec.method].build(names, spec.method_params, seed)
    opt = optimizer_factory(spec)(model.parameters())
    grads = GradientSimilarityTracker(names)
    aff = AffinityTracker(names, every=affinity_every) if affinity_every else None
    shared = [p for p in model.shared_parameters() if p.requires_grad]
    # every method but a Jacobian-level aggregator gets its Gramian from the engine
    separate_gramian = gradient and resolve_method(method).kind == "jacobian"
    step, state = 0, None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model.train()
        for _ in range(spec.epochs):
            for x, targets in _batches(split, spec.batch_size, gen):
                if aff is not None and aff.is_due(step):
                    aff.observe(model, tasks, x, targets, spec.lr, shared)
                opt.zero_grad()
                losses = tasks.losses(model(x), targets)
                assert isinstance(losses, torch.Tensor)
                gram = (task_gramian(losses, shared, retain_graph=True)
                        if separate_gramian else None)
                result = mtl_backward(losses, shared, method=method, state=state,
                                      generator=gen, task_names=names,
                                      return_gramian=gradient)
                state = result.state
                if gradient:
                    gram = result.gramian if gram is None else gram
                    assert gram is not None  # Gramian methods and return_gramian give it
                    grads.update(gram)
                opt.step()
                step += 1
    out: dict[str, Any] = {"task_names": names, "n_steps": step}
    if gradient:
        summary = grads.summary()
        out["gradient_cosine"] = summary.mean_cosine.tolist()
        out["gradient_conflict"] = summary.conflict_frequency.tolist()
    if aff is not None:
        out["affinity"] = aff.summary().mean_affinity.tolist()
    return out


def measure_linear(spec: LinearModelConfig, split: SplitData, seed: int) -> dict[str, Any]:
    """Cosine of the task weight vectors of ``spec`` fitted jointly on ``split.fit``.

    Returns
    -------
    dict
        ``task_names``, ``linear_cosine`` (nested lists) and ``cv_params``.

    Raises
    ------
    ValueError
        If the tasks are of several kinds, or of a kind linear models cannot fit.
    """
    from polytask._fit_linear import tuned_estimator
    from polytask.relate import weight_cosine

    kinds = sorted({t.kind for t in split.tasks})
    if len(kinds) > 1:
        raise ValueError(f"relate.linear: tasks of one kind are needed, got {kinds}")
    fit = split.fit
    if fit.form == "shared":
        est = tuned_estimator(spec, kinds[0], fit.feature_matrix(), fit.label_matrix(), None,
                              seed)
    else:
        X, y, ids = fit.stacked()
        est = tuned_estimator(spec, kinds[0], X, y, ids, seed)
    return {"task_names": list(split.tasks.names),
            "linear_cosine": np.asarray(weight_cosine(est)).tolist(),
            "cv_params": est.cv_params_}


def validation_scores(spec: DeepModelConfig, split: SplitData, seed: int) -> dict[str, float]:
    """Train ``spec`` on all tasks of ``split``; each task's primary metric on ``val``.

    Returns
    -------
    dict of str to float
        ``{task: validation score}``.
    """
    tasks = split.tasks
    trainer = make_trainer(spec, seed, None)
    method = reg.methods()[spec.method].build(tasks.names, spec.method_params, seed)
    model = build_model(spec, tasks, split.n_features, seed)
    trainer.fit(model, tasks, method, optimizer_factory(spec), split.train, split.val)
    metrics = trainer.evaluate(model, tasks, split.val)
    return {t.name: float(metrics[t.name][t.primary_metric]) for t in tasks}


__all__ = ["measure_linear", "measure_training", "validation_scores"]
