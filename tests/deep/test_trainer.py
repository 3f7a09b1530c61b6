"""The training loop: learning, missing labels, lr_scale, periods, auxiliary tasks,
model selection, clipping, non-finite losses, and input validation."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from torch import nn

import polytask.deep._fit as fit_module
import polytask.deep.trainer as trainer_module
from polytask.data import MultiTaskData, MultiTaskTorchDataset, mmoe_synthetic
from polytask.deep._checkpoint import load_checkpoint
from polytask.deep._setup import task_scales
from polytask.deep.aggregation import MGDA, Aggregator, PCGrad
from polytask.deep.architectures import MLP, SharedBottom, SoftSharing
from polytask.deep.trainer import Trainer, TrainingError, task_param_groups
from polytask.deep.weighting import EqualWeighting, UncertaintyWeighting
from polytask.tasks import Task, TaskSet

SGD = functools.partial(torch.optim.SGD, lr=0.05)
ADAM = functools.partial(torch.optim.Adam, lr=0.01)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _model(names=("a", "b"), d_in=4, seed=0, dropout=0.0):
    torch.manual_seed(seed)
    return SharedBottom(MLP([d_in, 8], activate_last=True, dropout=dropout),
                        {t: nn.Linear(8, 1) for t in names})


def _joint(n=48, names=("a", "b"), missing=0.0, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    Y = X @ rng.normal(size=(4, len(names))) + 0.05 * rng.normal(size=(n, len(names)))
    Y[rng.random(Y.shape) < missing] = np.nan
    return MultiTaskData(X, Y, task_names=list(names))


def _trainer(**kw):
    return Trainer(**{"max_epochs": 2, "batch_size": 16, "progress": False,
                      "tensorboard": False, **kw})


# ---------------------------------------------------------------- learning
def test_shared_bottom_learns_the_mmoe_synthetic_tasks():
    syn = mmoe_synthetic(240, n_features=8, correlation=0.8, random_state=0)
    data = MultiTaskData(syn.X, syn.Y, task_names=syn.task_names)
    train, val = data.train_test_split(0.75, random_state=0)
    torch.manual_seed(0)
    model = SharedBottom(MLP([8, 32], activate_last=True),
                         {t: MLP([32, 16, 1]) for t in syn.task_names})
    history = _trainer(max_epochs=10, batch_size=30).fit(
        model, syn.task_names, None, functools.partial(torch.optim.Adam, lr=0.02), train, val)
    for task in syn.task_names:
        train_loss = history.metric(task, "loss", "train")
        val_mse = history.metric(task, "mse", "val")
        assert train_loss[-1] < 0.5 * train_loss[0]
        assert min(val_mse) < 0.5 * val_mse[0]
        variance = float(np.nanvar(val.label_matrix()[:, syn.task_names.index(task)]))
        assert history.best_metrics[task]["mse"] < 0.5 * variance


def test_missing_labels_are_masked_and_unlabelled_tasks_get_no_gradient():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(10, 4, generator=g)
    a = torch.randn(10, generator=g)
    a[[0, 3, 7]] = float("nan")
    data = MultiTaskTorchDataset(x, {"a": a, "b": torch.full((10,), float("nan"))})
    model, reference = _model(), _model()
    keep = ~torch.isnan(a)
    loss = ((reference(x)["a"][:, 0][keep] - a[keep]) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        for p in reference.parameters():
            if p.grad is not None:
                p -= 0.05 * p.grad
    head_b = [p.detach().clone() for p in model.task_parameters("b")]
    history = _trainer(max_epochs=1, batch_size=10).fit(model, ["a", "b"], None, SGD, data)
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
    assert all(torch.equal(p, q) for p, q in zip(model.task_parameters("b"), head_b,
                                                  strict=True))
    assert history.metric("b", "loss", "train") == []  # never observed: not logged
    assert math.isfinite(history.metric("a", "loss", "train")[0])


# ---------------------------------------------------------------- per-task lr and period
def test_lr_scale_sets_the_parameter_group_learning_rates():
    tasks = [Task("a", lr_scale=1.0), Task("b", lr_scale=10.0)]
    trainer = _trainer(max_epochs=1)
    uw = UncertaintyWeighting(["a", "b"])
    trainer.fit(_model(), tasks, uw, functools.partial(torch.optim.SGD, lr=0.01), _joint())
    lrs = {g["name"]: g["lr"] for g in trainer.optimizer_.param_groups}
    assert lrs == pytest.approx({"shared": 0.01, "task:a": 0.01, "task:b": 0.1,
                                 "method": 0.01})
    groups = task_param_groups(_model(), TaskSet(tasks), uw)
    assert [g["lr_scale"] for g in groups] == [1.0, 1.0, 10.0, 1.0]


def test_lr_scale_multiplies_the_head_step():
    data = _joint(16)
    plain, scaled = _model(), _model()
    _trainer(max_epochs=1).fit(plain, ["a", "b"], None, SGD, data)
    _trainer(max_epochs=1).fit(scaled, [Task("a"), Task("b", lr_scale=3.0)], None, SGD, data)
    start = _model()
    for p0, p1, p3 in zip(start.task_parameters("b"), plain.task_parameters("b"),
                          scaled.task_parameters("b"), strict=True):
        torch.testing.assert_close(p3 - p0, 3.0 * (p1 - p0), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(scaled.encoder[0].weight, plain.encoder[0].weight)


def test_optimizer_instance_cannot_scale_learning_rates():
    model = _model()
    with pytest.raises(ValueError, match=r"tasks \['b'\] have lr_scale != 1"):
        _trainer().fit(model, [Task("a"), Task("b", lr_scale=2.0)], None,
                       torch.optim.SGD(model.parameters(), lr=0.1), _joint())
    with pytest.raises(ValueError, match="optimizer does not hold 1 trainable"):
        _trainer().fit(model, ["a", "b"], UncertaintyWeighting(2),
                       torch.optim.SGD(model.parameters(), lr=0.1), _joint())
    with pytest.raises(TypeError, match=r"optimizer must be a torch\.optim\.Optimizer"):
        _trainer().fit(model, ["a", "b"], None, "adam", _joint())


class RecordingSGD(torch.optim.SGD):
    """SGD that records the gradient of every parameter at each step."""

    def __init__(self, params, lr=0.05):
        super().__init__(params, lr=lr)
        self.grads: list[dict[str, list[torch.Tensor | None]]] = []

    def step(self, closure=None):
        self.grads.append({g["name"]: [None if p.grad is None else p.grad.clone()
                                       for p in g["params"]] for g in self.param_groups})
        return super().step(closure)


def _is_zero(grads):
    return all(g is None or not torch.any(g) for g in grads)


@pytest.mark.parametrize("method", [None, MGDA(), PCGrad()], ids=["EW", "MGDA", "PCGrad"])
def test_task_with_period_k_gets_a_gradient_every_kth_step(method):
    trainer = _trainer(max_epochs=1, max_steps=7, batch_size=6)
    trainer.fit(_model(), [Task("a"), Task("b", period=3)], method, RecordingSGD, _joint())
    grads = trainer.optimizer_.grads
    assert len(grads) == 7
    assert [not _is_zero(g["task:b"]) for g in grads] == [s % 3 == 0 for s in range(7)]
    assert all(not _is_zero(g["task:a"]) for g in grads)


# ---------------------------------------------------------------- auxiliary tasks
TS = TaskSet([Task("m"), Task("x", role="auxiliary", weight=0.5), Task("p", period=2)])


@pytest.mark.parametrize(
    ("schedule", "progress", "aux"),
    [("constant", 0.3, 1.0), ("linear", 0.25, 0.75), ("cosine", 0.5, 0.5),
     ("cosine", 0.0, 1.0), (lambda p: 2.0 * p, 0.2, 0.4)],
)
def test_task_scales_follow_the_schedule(schedule, progress, aux):
    scales = task_scales(TS, schedule, progress, step=0)
    np.testing.assert_allclose(scales.numpy(), [1.0, 0.5 * aux, 1.0])
    assert task_scales(TS, schedule, progress, step=1)[2] == 0.0  # p is off its period


def test_schedule_mapping_applies_to_the_named_tasks_only():
    scales = task_scales(TS, {"m": "linear"}, 0.25, step=0)
    np.testing.assert_allclose(scales.numpy(), [0.75, 0.5, 1.0])


@pytest.mark.parametrize(
    ("schedule", "match"),
    [({"zz": "linear"}, r"Unknown task\(s\) \['zz'\] in aux_schedule; known tasks"),
     ("exponential", "aux_schedule must be one of"),
     ({"x": 3}, r"aux_schedule\['x'\] must be one of")],
)
def test_bad_schedules_are_rejected(schedule, match):
    with pytest.raises(ValueError, match=match):
        _trainer(aux_schedule=schedule).fit(_model(("m", "x")), ["m", "x"], None, SGD,
                                            _joint(names=("m", "x")))


def test_schedule_returning_a_negative_weight_is_an_error():
    with pytest.raises(ValueError, match=r"aux_schedule returned -1\.0"):
        _trainer(aux_schedule=lambda p: -1.0).fit(
            _model(("m", "x")), [Task("m"), Task("x", role="auxiliary")], None, SGD,
            _joint(names=("m", "x")))


def test_zero_auxiliary_schedule_stops_its_gradient():
    trainer = _trainer(max_epochs=1, aux_schedule=lambda p: 0.0)
    trainer.fit(_model(("m", "x")), [Task("m"), Task("x", role="auxiliary")], None,
                RecordingSGD, _joint(names=("m", "x")))
    assert all(_is_zero(g["task:x"]) and not _is_zero(g["task:m"])
               for g in trainer.optimizer_.grads)


def _scripted_evaluation(monkeypatch, main, aux, snapshots):
    calls = iter(range(100))

    def fake(model, tasks, data, **kwargs):
        i = next(calls)
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return ({"m": {"mse": main[i]}, "x": {"mse": aux[i]}}, {"m": main[i], "x": aux[i]})

    monkeypatch.setattr(fit_module, "evaluate_model", fake)


def test_model_selection_and_early_stopping_use_main_tasks_only(monkeypatch):
    snapshots: list[dict[str, torch.Tensor]] = []
    _scripted_evaluation(monkeypatch, main=[3.0, 1.0, 2.0, 4.0, 5.0, 0.5],
                         aux=[5.0, 4.0, 0.1, 0.01, 0.001, 0.0001], snapshots=snapshots)
    model = _model(("m", "x"))
    data = _joint(names=("m", "x"))
    history = _trainer(max_epochs=6, patience=2).fit(
        model, [Task("m", metrics=["mse"]), Task("x", metrics=["mse"], role="auxiliary")],
        None, SGD, data, data)
    assert history.best_epoch == 2 and history.best_score == -1.0
    assert history.scores == [-3.0, -1.0, -2.0, -4.0]  # stopped after 2 worse epochs
    assert history.stopped_early and history.n_epochs == 4
    for key, value in model.state_dict().items():  # the best epoch's weights restored
        assert torch.equal(value, snapshots[1][key]), key


def test_restore_best_false_keeps_the_last_weights(monkeypatch):
    snapshots: list[dict[str, torch.Tensor]] = []
    _scripted_evaluation(monkeypatch, main=[1.0, 2.0, 3.0], aux=[1.0, 1.0, 1.0],
                         snapshots=snapshots)
    model = _model(("m", "x"))
    data = _joint(names=("m", "x"))
    history = _trainer(max_epochs=3, restore_best=False).fit(
        model, [Task("m", metrics=["mse"]), Task("x", metrics=["mse"])], None, SGD, data,
        data)
    assert history.best_epoch == 1
    assert all(torch.equal(v, snapshots[2][k]) for k, v in model.state_dict().items())


# ---------------------------------------------------------------- clipping, precision
def test_gradient_clipping_bounds_the_update_norm():
    model, start = _model(), _model()
    _trainer(max_epochs=1, max_steps=1, grad_clip_norm=1e-3).fit(
        model, ["a", "b"], None, functools.partial(torch.optim.SGD, lr=1.0), _joint())
    step = torch.cat([(p - q).flatten() for p, q in zip(model.parameters(),
                                                        start.parameters(), strict=True)])
    assert float(step.detach().norm()) == pytest.approx(1e-3, rel=1e-4)


def test_mixed_precision_is_a_no_op_on_cpu():
    a, b = _model(), _model()
    _trainer(mixed_precision=True).fit(a, ["a", "b"], None, ADAM, _joint())
    _trainer(mixed_precision=False).fit(b, ["a", "b"], None, ADAM, _joint())
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


class _JacobianSum(Aggregator):
    def __call__(self, jacobian):
        return jacobian.sum(dim=0)


@pytest.mark.parametrize("method", [None, UncertaintyWeighting(2), MGDA(), _JacobianSum()],
                         ids=["EW", "UW", "MGDA", "JacobianSum"])
@pytest.mark.parametrize("mode", ["parameter", "representation"])
def test_gradient_scaler_path_equals_the_unscaled_step(monkeypatch, method, mode):
    """The fp16 path (a GradScaler scales every gradient, then unscales them) takes the
    steps of the plain path; CUDA is not needed to check the bookkeeping."""
    runs = []
    for scaled in (False, True):
        if isinstance(method, nn.Module):  # a fresh weighting state for each run
            method = type(method)(2)
        if scaled:
            monkeypatch.setattr(trainer_module, "amp_settings", lambda *a: (
                None, torch.amp.GradScaler("cpu", init_scale=2.0**10)))
        model = _model(names=("a", "b"))
        _trainer(mode=mode, grad_clip_norm=5.0).fit(model, ["a", "b"], method, SGD,
                                                    _joint(missing=0.2))
        runs.append(model)
    for p, q in zip(runs[0].parameters(), runs[1].parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_same_seed_same_run_other_seed_other_run():
    runs = []
    for seed in (1, 1, 2):
        model = _model(dropout=0.3)
        _trainer(seed=seed).fit(model, ["a", "b"], None, ADAM, _joint())
        runs.append(torch.cat([p.flatten() for p in model.parameters()]))
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_fit_leaves_the_global_rng_untouched():
    model = _model(dropout=0.3)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    trainer = _trainer(seed=None)
    trainer.fit(model, ["a", "b"], None, ADAM, _joint())
    assert isinstance(trainer.seed_, int)
    assert torch.equal(torch.rand(3), expected)


# ---------------------------------------------------------------- failures
class NaNAfter(SharedBottom):
    """Predicts NaN for task ``b`` from the ``at``-th forward pass on."""

    def __init__(self, at: int) -> None:
        base = _model()
        super().__init__(base.encoder, dict(zip(base.task_names, base.heads, strict=True)))
        self.at, self.calls = at, 0

    def forward(self, x):
        out = super().forward(x)
        self.calls += 1
        if self.calls > self.at:
            out["b"] = out["b"] * float("nan")
        return out


def test_non_finite_loss_names_task_and_step_and_keeps_the_checkpoint(tmp_path):
    model = NaNAfter(at=5)  # 3 steps per epoch: fails at step 5, in epoch 2
    trainer = _trainer(max_epochs=4, run_dir=tmp_path)
    with pytest.raises(TrainingError, match=r"non-finite loss nan for task 'b' at step 5"):
        trainer.fit(model, ["a", "b"], None, SGD, _joint())
    assert issubclass(TrainingError, ValueError)
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["epoch"] == 1 and state["step"] == 3
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert lines and all('"epoch": 1' in line for line in lines)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"max_epochs": 0}, "max_epochs must be an integer >= 1"),
     ({"batch_size": 2.5}, "batch_size must be an integer >= 1"),
     ({"max_steps": -1}, "max_steps must be an integer >= 1 or None"),
     ({"patience": 0}, "patience must be"),
     ({"sampling": "random"}, "sampling must be one of"),
     ({"temperature": -1.0}, "temperature must be a finite number > 0"),
     ({"task_mixing": "rows"}, "task_mixing must be one of"),
     ({"mode": "features"}, "mode must be one of"),
     ({"mixed_precision": "fp8"}, "mixed_precision must be one of"),
     ({"mixed_precision": 1}, "mixed_precision must be one of"),
     ({"grad_clip_norm": 0.0}, "grad_clip_norm must be a finite number > 0"),
     ({"seed": -3}, "seed must be a non-negative integer")],
)
def test_invalid_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _trainer(**kwargs).fit(_model(), ["a", "b"], None, SGD, _joint())


def test_unknown_and_missing_task_names_are_errors():
    data = _joint(names=("a", "b", "zz"))
    with pytest.raises(ValueError, match=r"Unknown task\(s\) \['zz'\] in train data; "
                                         r"known tasks: \['a', 'b'\]"):
        _trainer().fit(_model(), ["a", "b"], None, SGD, data)
    with pytest.raises(ValueError, match=r"Unknown task\(s\) \['zz'\] in validation data"):
        _trainer().fit(_model(), ["a", "b"], None, SGD, _joint(), data)
    with pytest.raises(ValueError, match=r"task\(s\) \['b'\] have no labels in train data"):
        _trainer().fit(_model(), ["a", "b"], None, SGD, _joint(names=("a",)))
    with pytest.raises(ValueError, match=r"task\(s\) \['c'\] are not outputs of the model"):
        _trainer().fit(_model(), ["a", "b", "c"], None, SGD, _joint(names=("a", "b", "c")))


def test_prediction_target_shape_mismatch_names_the_task():
    torch.manual_seed(0)
    model = SharedBottom(MLP([4, 8]), {"a": nn.Linear(8, 1), "b": nn.Linear(8, 2)})
    with pytest.raises(ValueError, match=r"Task 'b': prediction of shape \(16, 2\) does not "
                                         r"match target of shape \(16,\)"):
        _trainer().fit(model, ["a", "b"], None, SGD, _joint())


def test_method_and_model_mismatches_are_errors():
    with pytest.raises(ValueError, match="built for 3 task"):
        _trainer().fit(_model(), ["a", "b"], EqualWeighting(3), SGD, _joint())
    with pytest.raises(ValueError, match=r"built for tasks \['b', 'a'\]"):
        _trainer().fit(_model(), ["a", "b"], EqualWeighting(["b", "a"]), SGD, _joint())
    with pytest.raises(TypeError, match="method must be a loss weighting"):
        _trainer().fit(_model(), ["a", "b"], "mgda", SGD, _joint())
    soft = SoftSharing({t: nn.Linear(4, 1) for t in "ab"})
    with pytest.raises(ValueError, match="mode='representation' needs"):
        _trainer(mode="representation").fit(soft, ["a", "b"], MGDA(), SGD, _joint())
    with pytest.raises(TypeError, match="model must provide shared_parameters"):
        _trainer().fit(nn.Linear(4, 2), ["a", "b"], None, SGD, _joint())
    with pytest.raises(TypeError, match="train data must be a MultiTaskData"):
        _trainer().fit(_model(), ["a", "b"], None, SGD, 42)
