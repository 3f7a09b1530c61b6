"""Atomic, pickle-free checkpoints, and exact resume (in process and after SIGKILL)."""

from __future__ import annotations

import functools
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import polytask.deep._checkpoint as ckpt_module
from polytask.data import MultiTaskData
from polytask.deep._checkpoint import (
    check_serializable,
    load_checkpoint,
    save_checkpoint,
    write_text_atomic,
)
from polytask.deep.architectures import MLP, SharedBottom
from polytask.deep.trainer import Trainer
from polytask.deep.weighting import DWA

HERE = Path(__file__).parent

pytestmark = pytest.mark.usefixtures("torch_one_thread")

SRC = HERE.parent.parent / "src"


# ---------------------------------------------------------------- save / load
def test_round_trip_of_tensors_and_plain_values(tmp_path):
    state: dict[str, object] = {"w": torch.arange(3.0), "rng": torch.get_rng_state(),
                                "nested": {"a": [1, 2.5, None, "x"], 3: (True, "y")}}
    path = save_checkpoint(state, tmp_path / "sub" / "c.pt")
    back = load_checkpoint(path)
    assert torch.equal(back["w"], torch.arange(3.0))
    assert torch.equal(back["rng"], state["rng"])  # type: ignore[arg-type]
    assert back["nested"] == {"a": [1, 2.5, None, "x"], 3: (True, "y")}


class _Opaque:
    pass


@pytest.mark.parametrize(
    ("state", "match"),
    [
        ({"model": nn.Linear(2, 2)}, r"checkpoint\['model'\] is a Linear"),
        ({"h": {"deep": [1, _Opaque()]}}, r"checkpoint\['h'\]\['deep'\]\[1\] is a _Opaque"),
        ({"k": {(1, 2): 3}}, r"has a key \(1, 2\)"),
        ({"arr": np.zeros(2)}, r"checkpoint\['arr'\] is a ndarray"),
    ],
)
def test_refuses_objects_that_weights_only_cannot_load(tmp_path, state, match):
    with pytest.raises(TypeError, match=match):
        save_checkpoint(state, tmp_path / "c.pt")
    assert not (tmp_path / "c.pt").exists()
    with pytest.raises(TypeError, match=match):
        check_serializable(state)


_EXECUTED: list[str] = []


def _side_effect() -> list[str]:
    _EXECUTED.append("unpickled")
    return _EXECUTED


class _Evil:
    def __reduce__(self):  # runs _side_effect if the file is ever unpickled freely
        return (_side_effect, ())


def test_load_never_unpickles_arbitrary_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"payload": _Evil()}, path)
    with pytest.raises(ValueError, match="weights_only=True"):
        load_checkpoint(path)
    assert _EXECUTED == []


def test_missing_checkpoint_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nope.pt")


def test_crash_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    save_checkpoint({"epoch": 1, "w": torch.ones(3)}, path)

    def torn_save(obj, handle, *args, **kwargs):
        handle.write(b"half a checkpoint")  # a partial file, then the crash
        raise KeyboardInterrupt("killed during save")

    monkeypatch.setattr(ckpt_module.torch, "save", torn_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"epoch": 2, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    back = load_checkpoint(path)
    assert back["epoch"] == 1 and torch.equal(back["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]  # no temporary left


def test_crash_before_rename_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    save_checkpoint({"epoch": 1}, path)

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_module.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_write_text_atomic_keeps_file_mode(tmp_path):
    path = tmp_path / "config.json"
    write_text_atomic(path, "{}")
    os.chmod(path, 0o640)
    write_text_atomic(path, '{"a": 1}')
    assert path.read_text() == '{"a": 1}' and (path.stat().st_mode & 0o777) == 0o640


# ---------------------------------------------------------------- trainer checkpoints
def _problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4))
    Y = X @ rng.normal(size=(4, 2)) + 0.1 * rng.normal(size=(64, 2))
    Y[rng.random(Y.shape) < 0.2] = np.nan
    return MultiTaskData(X, Y, task_names=["a", "b"]).train_test_split(0.75, random_state=0)


def _model():
    torch.manual_seed(0)
    return SharedBottom(MLP([4, 8], dropout=0.1, activate_last=True),
                        {t: nn.Linear(8, 1) for t in "ab"})


ADAM = functools.partial(torch.optim.Adam, lr=0.01)


def _trainer(run_dir, **kw):
    params = {"max_epochs": 4, "batch_size": 16, "run_dir": run_dir, "progress": False,
              "seed": 5, "tensorboard": False}
    return Trainer(**{**params, **kw})


def test_trainer_checkpoint_is_weights_only_loadable(tmp_path):
    train, val = _problem()
    _trainer(tmp_path, max_epochs=2).fit(_model(), ["a", "b"], DWA(2), ADAM, train, val)
    raw = torch.load(tmp_path / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert raw["epoch"] == 2 and raw["step"] == 2 * 3  # 48 rows / 16
    assert raw["task_names"] == ["a", "b"]
    assert set(raw["method"]) >= {"loss_history", "num_epochs"}
    assert raw["best_model"].keys() == _model().state_dict().keys()
    assert isinstance(raw["history"], str) and isinstance(raw["rng"]["cpu"], torch.Tensor)


def test_in_process_resume_equals_one_long_run(tmp_path):
    train, val = _problem()
    straight = _model()
    h_straight = _trainer(tmp_path / "straight").fit(straight, ["a", "b"], DWA(2), ADAM,
                                                     train, val)
    resumed = _model()
    _trainer(tmp_path / "resumed", max_epochs=2).fit(resumed, ["a", "b"], DWA(2), ADAM,
                                                     train, val)
    resumed = _model()  # a fresh process would start from scratch too
    h_resumed = _trainer(tmp_path / "resumed").fit(resumed, ["a", "b"], DWA(2), ADAM,
                                                   train, val)
    assert h_resumed == h_straight
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(),
                         strict=True):
        assert torch.equal(a, b), k
    assert (tmp_path / "straight" / "metrics.jsonl").read_text() == \
        (tmp_path / "resumed" / "metrics.jsonl").read_text()


def test_resume_of_a_finished_run_trains_no_further(tmp_path):
    train, _ = _problem()
    model = _model()
    _trainer(tmp_path, max_epochs=2).fit(model, ["a", "b"], None, ADAM, train)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    again = _model()
    history = _trainer(tmp_path, max_epochs=2).fit(again, ["a", "b"], None, ADAM, train)
    assert history.n_epochs == 2
    assert all(torch.equal(before[k], v) for k, v in again.state_dict().items())


@pytest.mark.parametrize(
    ("change", "match"),
    [({"batch_size": 8}, "batch_size: checkpoint 16, now 8"),
     ({"seed": 6}, "seed: checkpoint 5, now 6"),
     ({"sampling": "uniform"}, "sampling")],
)
def test_resume_refuses_another_configuration(tmp_path, change, match):
    train, _ = _problem()
    _trainer(tmp_path, max_epochs=1).fit(_model(), ["a", "b"], None, ADAM, train)
    with pytest.raises(ValueError, match=match):
        _trainer(tmp_path, **change).fit(_model(), ["a", "b"], None, ADAM, train)
    # resume=False starts over instead
    _trainer(tmp_path, resume=False, **change).fit(_model(), ["a", "b"], None, ADAM, train)


def test_resume_refuses_other_tasks(tmp_path):
    train, _ = _problem()
    _trainer(tmp_path, max_epochs=1).fit(_model(), ["a", "b"], None, ADAM, train)
    with pytest.raises(ValueError, match=r"trained on tasks \['a', 'b'\], not \['b', 'a'\]"):
        _trainer(tmp_path).fit(_model(), ["b", "a"], None, ADAM, train)


def test_resume_with_other_optimizer_groups_says_why_and_what_to_do(tmp_path):
    train, _ = _problem()
    _trainer(tmp_path, max_epochs=1).fit(_model(), ["a", "b"], None, ADAM, train)

    def one_group(groups):
        return torch.optim.Adam([p for g in groups for p in g["params"]], lr=0.01)

    with pytest.raises(ValueError, match=r"holds 3 parameter group\(s\), this optimizer 1\. "
                                         r"It was written with another optimizer factory.*"
                                         r"delete the run directory's checkpoint"):
        _trainer(tmp_path).fit(_model(), ["a", "b"], None, one_group, train)


# ---------------------------------------------------------------- kill -9 and resume
def _script():
    spec = importlib.util.spec_from_file_location("_resume_script", HERE / "_resume_script.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    """A real process is killed (SIGKILL) after its first checkpoint; resuming from that
    checkpoint gives bit-for-bit the model, history and logs of an uninterrupted run."""
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    victim = subprocess.Popen(
        [sys.executable, str(HERE / "_resume_script.py"), str(tmp_path / "killed"),
         str(tmp_path / "killed.pt"), "0.1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    script = _script()
    threads = torch.get_num_threads()
    try:
        checkpoint = tmp_path / "killed" / "checkpoint.pt"
        deadline = time.monotonic() + 120
        while not checkpoint.exists():
            assert victim.poll() is None, victim.communicate()[0].decode()
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.005)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        assert victim.returncode == -signal.SIGKILL
        state = load_checkpoint(checkpoint)
        assert 1 <= state["epoch"] < 8  # killed in the middle of the run
        assert not (tmp_path / "killed.pt").exists()
        script.main(str(tmp_path / "killed"), str(tmp_path / "killed.pt"), 0.0)  # resume
        script.main(str(tmp_path / "full"), str(tmp_path / "full.pt"), 0.0)  # uninterrupted
    finally:
        torch.set_num_threads(threads)
        if victim.poll() is None:
            victim.kill()
            victim.wait()
    a = torch.load(tmp_path / "full.pt", weights_only=True)
    b = torch.load(tmp_path / "killed.pt", weights_only=True)
    assert a["history"] == b["history"]  # every metric of every epoch, exactly
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert (tmp_path / "full" / "metrics.jsonl").read_text() == \
        (tmp_path / "killed" / "metrics.jsonl").read_text()
