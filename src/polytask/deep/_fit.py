"""The epoch loop of :meth:`Trainer.fit <polytask.deep.trainer.Trainer.fit>`.

Seeding, resume from a checkpoint, per-epoch logging and evaluation, model selection on
the main tasks, early stopping and atomic checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from polytask.tasks import TaskSet

from ._batches import BatchSource
from ._checkpoint import (
    CHECKPOINT_NAME,
    cpu_state_dict,
    load_checkpoint,
    rng_states,
    save_checkpoint,
    set_rng_states,
)
from ._distributed import DistContext
from ._evaluation import evaluate_model, selection_score
from ._logging import History, RunLogger, progress_bar
from ._setup import move, task_scales
from ._step import StepEngine

if TYPE_CHECKING:
    from .trainer import Trainer

CHECKPOINT_FORMAT = 1
_TRAJECTORY = ("batch_size", "steps_per_epoch", "sampling", "temperature", "task_mixing",
               "mode", "grad_clip_norm", "mixed_precision")


@dataclass
class _RunState:
    history: History = field(default_factory=History)
    epoch: int = 0
    step: int = 0
    best_state: dict[str, Any] | None = None


@dataclass
class _Run:
    """Everything one fit works with (built by ``Trainer.fit``)."""

    trainer: Trainer
    model: nn.Module
    tasks: TaskSet
    method: Any
    optimizer: torch.optim.Optimizer
    scaler: Any
    engine: StepEngine
    source: BatchSource
    val: Any
    device: torch.device
    dist: DistContext


def _method_generators(method: Any) -> list[torch.Generator]:
    """Generators held by a (non-module) aggregator or Gramian weighting."""
    if isinstance(method, nn.Module):
        return []  # a loss weighting saves its generator in its state_dict
    found: list[torch.Generator] = []
    for obj in (method, getattr(method, "weighting", None)):
        gen = getattr(obj, "generator", None)
        if isinstance(gen, torch.Generator) and all(gen is not g for g in found):
            found.append(gen)
    return found


def _draw_seed(dist: DistContext, device: torch.device) -> int:
    seed = int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] % (2**62))
    if dist.enabled:  # every rank must use rank 0's seed
        seed = int(dist.all_reduce_sum(torch.tensor([seed if dist.is_main else 0],
                                                    dtype=torch.long, device=device)).item())
    return seed


def _finished(trainer: Trainer, st: _RunState) -> bool:
    return (st.history.stopped_early or st.epoch >= trainer.max_epochs
            or (trainer.max_steps is not None and st.step >= trainer.max_steps))


def _trajectory(run: _Run) -> dict[str, Any]:
    out = {k: getattr(run.trainer, k) for k in _TRAJECTORY}
    out["method"] = type(run.method).__name__
    return out


def _check_compatible(ckpt: dict[str, Any], run: _Run, path: Path) -> None:
    if list(ckpt.get("task_names", [])) != list(run.tasks.names):
        raise ValueError(f"cannot resume from {str(path)!r}: it was trained on tasks "
                         f"{ckpt.get('task_names')}, not {list(run.tasks.names)}")
    diffs = [f"{k}: checkpoint {v!r}, now {_trajectory(run).get(k)!r}"
             for k, v in ckpt.get("trajectory", {}).items() if _trajectory(run).get(k) != v]
    seed = run.trainer.seed
    if seed is not None and seed != ckpt["seed"]:
        diffs.append(f"seed: checkpoint {ckpt['seed']!r}, now {seed!r}")
    if diffs:
        raise ValueError(f"cannot resume from {str(path)!r}: the configuration differs ("
                         + "; ".join(diffs) + "); use another run_dir or resume=False")


def _config(run: _Run, seed: int) -> dict[str, Any]:
    tasks = [{"name": t.name, "kind": t.kind, "role": t.role, "weight": t.weight,
              "lr_scale": t.lr_scale, "period": t.period, "metrics": list(t.metric_names)}
             for t in run.tasks]
    return {"trainer": run.trainer.get_params(), "seed_used": seed, "tasks": tasks,
            "method": repr(run.method), "model": type(run.model).__name__,
            "optimizer": type(run.optimizer).__name__,
            "optimizer_defaults": dict(run.optimizer.defaults),
            "world_size": run.dist.world_size}


def _checkpoint(run: _Run, st: _RunState, gen: torch.Generator, seed: int) -> dict[str, Any]:
    return {
        "format": CHECKPOINT_FORMAT, "seed": seed, "trajectory": _trajectory(run),
        "task_names": list(run.tasks.names), "epoch": st.epoch, "step": st.step,
        "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
        "method": run.method.state_dict() if isinstance(run.method, nn.Module) else {},
        "method_generators": [g.get_state() for g in _method_generators(run.method)],
        "engine": run.engine.state_dict(), "source": run.source.state_dict(),
        "data_generator": gen.get_state(), "rng": rng_states(run.device),
        "scaler": run.scaler.state_dict() if run.scaler is not None else {},
        "history": st.history.to_json(), "best_model": st.best_state,
        "gradient_tracker": _tracker_state(run.trainer.gradient_tracker),
    }


def _tracker_state(tracker: Any) -> dict[str, Any]:
    state_dict = getattr(tracker, "state_dict", None)
    return dict(state_dict()) if callable(state_dict) else {}


def _restore(ckpt: dict[str, Any], run: _Run, st: _RunState, gen: torch.Generator) -> None:
    run.model.load_state_dict(ckpt["model"])
    try:
        run.optimizer.load_state_dict(ckpt["optimizer"])
    except ValueError as err:
        n_saved = len(ckpt["optimizer"].get("param_groups", ()))
        raise ValueError(
            f"the checkpoint's optimizer state does not fit this optimizer ({err}): it holds "
            f"{n_saved} parameter group(s), this optimizer {len(run.optimizer.param_groups)}. "
            "It was written with another optimizer factory, other per-task settings or "
            "another polytask version (experiments merge Adam's groups since 8 Dec 2026); "
            "resume with the same settings, or delete the run directory's checkpoint to "
            "train this run again"
        ) from err
    if isinstance(run.method, nn.Module):
        run.method.load_state_dict(ckpt["method"])
    for g, state in zip(_method_generators(run.method), ckpt["method_generators"], strict=True):
        g.set_state(state)
    run.engine.load_state_dict(ckpt["engine"])
    run.source.load_state_dict(ckpt["source"])
    gen.set_state(ckpt["data_generator"])
    set_rng_states(ckpt["rng"], run.device)
    if run.scaler is not None and ckpt["scaler"]:
        run.scaler.load_state_dict(ckpt["scaler"])
    tracker = run.trainer.gradient_tracker
    saved = ckpt.get("gradient_tracker")
    if saved and callable(getattr(tracker, "load_state_dict", None)):
        tracker.load_state_dict(saved)
    st.history = History.from_json(ckpt["history"])
    st.epoch, st.step, st.best_state = int(ckpt["epoch"]), int(ckpt["step"]), ckpt["best_model"]


def run_fit(trainer: Trainer, **parts: Any) -> tuple[History, int]:
    """Run the training loop; return the history and the seed used."""
    run = _Run(trainer=trainer, **parts)
    run_dir = Path(trainer.run_dir) if trainer.run_dir is not None else None
    path = run_dir / CHECKPOINT_NAME if run_dir is not None else None
    ckpt = load_checkpoint(path) if (trainer.resume and path is not None
                                     and path.is_file()) else None
    if ckpt is not None:
        assert path is not None
        _check_compatible(ckpt, run, path)
        seed = int(ckpt["seed"])
    else:
        seed = trainer.seed if trainer.seed is not None else _draw_seed(run.dist, run.device)
    data_seed, rng_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
    st = _RunState()
    devices = [run.device] if run.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(rng_seed)
        gen = torch.Generator().manual_seed(data_seed)
        if ckpt is not None:
            _restore(ckpt, run, st, gen)
        run_logger = RunLogger(run_dir, tensorboard=trainer.tensorboard,
                               enabled=run.dist.is_main)
        run_logger.start(_config(run, seed), st.history)
        try:
            while not _finished(trainer, st):
                _epoch(run, st, gen, run_logger)
                if path is not None and (st.epoch % trainer.checkpoint_every == 0
                                         or _finished(trainer, st)):
                    if run.dist.is_main:
                        save_checkpoint(_checkpoint(run, st, gen, seed), path)
                    run.dist.barrier()
        finally:
            run_logger.close()
    if trainer.restore_best and run.val is not None and st.best_state is not None:
        run.model.load_state_dict(st.best_state)
    return st.history, seed


def _epoch(run: _Run, st: _RunState, gen: torch.Generator, run_logger: RunLogger) -> None:
    trainer, tasks, m = run.trainer, run.tasks, len(run.tasks)
    st.epoch += 1
    steps = run.source.steps_per_epoch()
    total = None if steps is None else trainer.max_epochs * steps
    if trainer.max_steps is not None:
        total = trainer.max_steps if total is None else min(total, trainer.max_steps)
    loss_sum = torch.zeros(m, dtype=torch.float64)
    count = torch.zeros(m, dtype=torch.float64)
    w_sum = torch.zeros(m, dtype=torch.float64)
    w_n = 0
    bar = progress_bar(steps, f"epoch {st.epoch}/{trainer.max_epochs}",
                       trainer.progress and run.dist.is_main)
    try:
        for x, targets in run.source.epoch(gen):
            tasks.check_names(targets, "a training batch")
            progress = st.step / total if total else (st.epoch - 1) / trainer.max_epochs
            scales = task_scales(tasks, trainer.aux_schedule, min(progress, 1.0), st.step)
            res = run.engine.step(move(x, run.device), move(targets, run.device), st.step,
                                  scales)
            if trainer.gradient_tracker is not None and res.gramian is not None:
                trainer.gradient_tracker.update(res.gramian)  # computed by the step anyway
            st.step += 1
            counts = res.counts.detach().double().cpu()
            loss_sum += res.losses.detach().double().cpu() * counts
            count += counts
            if res.weights is not None:
                w_sum += res.weights.detach().double().cpu()
                w_n += 1
            bar.update(1)
            if trainer.max_steps is not None and st.step >= trainer.max_steps:
                break
    finally:
        bar.close()
    observed = count > 0
    mean = torch.where(observed, loss_sum / count.clamp(min=1.0), run.engine.last_losses)
    if run.engine.kind == "loss" and bool(observed.any()):
        run.method.update_epoch(mean.float().to(run.device))
    new: list[dict[str, Any]] = []

    def add(split: str, task: str, metric: str, value: float) -> None:
        new.append({"epoch": st.epoch, "step": st.step, "split": split, "task": task,
                    "metric": metric, "value": float(value)})

    for i, name in enumerate(tasks.names):
        if observed[i]:
            add("train", name, "loss", float(mean[i]))
        if w_n:
            add("train", name, "weight", float(w_sum[i] / w_n))
    score = None
    if run.val is not None:
        metrics, losses = evaluate_model(
            run.model, tasks, run.val, batch_size=trainer.eval_batch_size or trainer.batch_size,
            device=run.device, what="validation data", undefined="skip")
        for name in tasks.names:
            for metric, value in metrics.get(name, {}).items():
                add("val", name, metric, value)
            if name in losses:
                add("val", name, "loss", losses[name])
        score = selection_score(tasks, metrics)
    _select(run, st, score)
    st.history.records.extend(new)
    run_logger.log(new)


def _select(run: _Run, st: _RunState, score: float | None) -> None:
    """Model selection on the main tasks' score, and early stopping."""
    h = st.history
    best = h.best_score
    h.scores.append(score)
    if run.val is None:
        h.best_epoch = st.epoch
        return
    if score is not None and (best is None or score > best):
        h.best_epoch = st.epoch
        if run.trainer.restore_best:
            st.best_state = cpu_state_dict(run.model)
    patience = run.trainer.patience
    if patience is not None and h.best_epoch is not None and st.epoch - h.best_epoch >= patience:
        h.stopped_early = True


__all__ = ["CHECKPOINT_FORMAT", "run_fit"]
