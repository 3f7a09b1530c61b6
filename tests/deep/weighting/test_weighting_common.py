"""Properties every loss weighting must have, checked on all of them."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch

from polytask.deep.weighting import (
    DBMTL,
    DWA,
    FAMO,
    RLW,
    EqualWeighting,
    GradNorm,
    LossWeighting,
    StaticWeighting,
    UncertaintyWeighting,
    task_gramian,
)

M = 3
NAMES = ("depth", "normals", "segmentation")

Factory = Callable[[int], LossWeighting]

FACTORIES: dict[str, Factory] = {
    "equal": lambda seed: EqualWeighting(M),
    "static": lambda seed: StaticWeighting([1.0, 0.5, 2.0]),
    "uncertainty": lambda seed: UncertaintyWeighting(M, init_log_variance=0.3),
    "gradnorm": lambda seed: GradNorm(M, alpha=1.5, lr=0.05),
    "dwa": lambda seed: DWA(M, temperature=2.0),
    "rlw_normal": lambda seed: RLW(M, generator=seed),
    "rlw_uniform": lambda seed: RLW(M, distribution="softmax_uniform", generator=seed),
    "rlw_dirichlet": lambda seed: RLW(M, distribution="dirichlet", generator=seed),
    "famo_adam": lambda seed: FAMO(M),
    "famo_sgd": lambda seed: FAMO(M, logit_optimizer="sgd", lr=0.5),
    "dbmtl": lambda seed: DBMTL(M, beta=0.9),
}
STATEFUL = [
    "uncertainty",
    "gradnorm",
    "dwa",
    "rlw_normal",
    "rlw_uniform",
    "rlw_dirichlet",
    "famo_adam",
    "famo_sgd",
    "dbmtl",
]


def make_inputs(
    steps: int, seed: int = 0, dtype: torch.dtype = torch.float32
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Deterministic positive losses, PSD Gramians and post-step losses."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        losses = (torch.rand(M, generator=gen) * 2 + 0.1).to(dtype)
        jac = torch.randn(M, 5, generator=gen).to(dtype)
        after = losses * (0.5 + torch.rand(M, generator=gen).to(dtype))
        out.append((losses, jac @ jac.T, after))
    return out


def step(
    method: LossWeighting, k: int, losses: torch.Tensor, gram: torch.Tensor, after: torch.Tensor
) -> None:
    """One training step's state changes (a fake optimizer step for learnable ones)."""
    with torch.no_grad():
        for p in method.parameters():
            p.add_(0.1 * losses.to(p) - 0.05)
    method.update(losses, gramian=gram, losses_after=after)
    if k % 3 == 2:
        method.update_epoch()


@pytest.fixture(params=sorted(FACTORIES))
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_weights_shape_finite_nonnegative_detached(name: str) -> None:
    method = FACTORIES[name](0)
    for k, (losses, gram, after) in enumerate(make_inputs(7)):
        w = method.weights(losses.requires_grad_(), gramian=gram)
        assert w.shape == (M,)
        assert torch.isfinite(w).all()
        assert (w >= 0).all()
        assert not w.requires_grad
        step(method, k, losses.detach(), gram, after)


def test_forward_gradient_wrt_losses_equals_weights(name: str) -> None:
    # The defining meaning of weights(): ∇ forward(losses) = Σ_i w_i ∇L_i.
    method = FACTORIES[name](0)
    for k, (losses, gram, after) in enumerate(make_inputs(6, seed=1)):
        x = losses.clone().requires_grad_()
        total = method(x, gramian=gram)
        assert total.ndim == 0
        (grad,) = torch.autograd.grad(total, x)
        torch.testing.assert_close(grad, method.weights(losses, gramian=gram))
        step(method, k, losses, gram, after)


def test_forward_and_weights_do_not_change_state(name: str) -> None:
    method = FACTORIES[name](0)
    inputs = make_inputs(4, seed=2)
    for k, (losses, gram, after) in enumerate(inputs[:3]):
        step(method, k, losses, gram, after)
    before = copy.deepcopy(method.state_dict())
    losses, gram, _ = inputs[3]
    method(losses.clone().requires_grad_(), gramian=gram).backward()
    method.weights(losses, gramian=gram)
    after_state = method.state_dict()
    assert before.keys() == after_state.keys()
    for key, value in before.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, after_state[key]), key


@pytest.mark.parametrize("name", STATEFUL)
@pytest.mark.parametrize("cut", [1, 4])
def test_state_dict_round_trip_resumes_identically(name: str, cut: int) -> None:
    inputs = make_inputs(10, seed=3)
    reference = FACTORIES[name](123)
    for k, (losses, gram, after) in enumerate(inputs[:cut]):
        step(reference, k, losses, gram, after)
    saved = copy.deepcopy(reference.state_dict())
    resumed = FACTORIES[name](999)  # a fresh instance, another seed for RLW
    resumed.load_state_dict(saved)
    for k, (losses, gram, after) in enumerate(inputs[cut:], start=cut):
        w_ref = reference.weights(losses, gramian=gram)
        w_res = resumed.weights(losses, gramian=gram)
        assert torch.equal(w_ref, w_res)
        assert torch.equal(reference(losses, gramian=gram), resumed(losses, gramian=gram))
        step(reference, k, losses, gram, after)
        step(resumed, k, losses, gram, after)


@pytest.mark.parametrize("name", STATEFUL)
def test_state_changes_with_updates_and_reset_restores(name: str) -> None:
    method = FACTORIES[name](5)
    inputs = make_inputs(9, seed=4)
    probe, probe_gram, _ = inputs[0]
    initial = method.weights(probe, gramian=probe_gram)
    initial_state = copy.deepcopy(method.state_dict())
    for k, (losses, gram, after) in enumerate(inputs):
        step(method, k, losses, gram, after)
    assert not torch.equal(method.weights(probe, gramian=probe_gram), initial)
    method.reset()
    torch.testing.assert_close(method.weights(probe, gramian=probe_gram), initial)
    for key, value in initial_state.items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(method.state_dict()[key], value)


def test_float64_losses_give_float64_outputs(name: str) -> None:
    method = FACTORIES[name](0)
    ((losses, gram, after),) = make_inputs(1, dtype=torch.float64)
    x = losses.clone().requires_grad_()
    total = method(x, gramian=gram)
    assert total.dtype == torch.float64
    assert method.weights(losses, gramian=gram).dtype == torch.float64
    method.update(losses, gramian=gram, losses_after=after)


# ----------------------------------------------------------------------- errors
def _named(name: str) -> LossWeighting:
    """The same method built with task names."""
    if name == "static":
        return StaticWeighting(dict(zip(NAMES, [1.0, 0.5, 2.0], strict=True)))
    method = FACTORIES[name](0)
    return (
        type(method)(NAMES)
        if name in ("equal", "uncertainty", "dwa", "dbmtl", "gradnorm")
        else _renamed(method)
    )


def _renamed(method: LossWeighting) -> LossWeighting:
    if isinstance(method, RLW):
        return RLW(NAMES, distribution=method.distribution, generator=0)
    assert isinstance(method, FAMO)
    return FAMO(NAMES, logit_optimizer=method.logit_optimizer)


def _good_gram() -> torch.Tensor:
    return make_inputs(1)[0][1]


@pytest.mark.parametrize(
    "bad", [torch.ones(M - 1), torch.ones(M + 1), torch.ones(1, M), torch.ones(())]
)
def test_wrong_shape_raises(name: str, bad: torch.Tensor) -> None:
    method = FACTORIES[name](0)
    with pytest.raises(ValueError, match=rf"losses must have shape \({M},\)"):
        method(bad, gramian=_good_gram())
    with pytest.raises(ValueError, match=rf"losses must have shape \({M},\)"):
        method.weights(bad, gramian=_good_gram())
    with pytest.raises(ValueError, match=rf"losses must have shape \({M},\)"):
        method.update(bad, gramian=_good_gram(), losses_after=torch.ones(M))


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_loss_raises_naming_the_task(name: str, bad_value: float) -> None:
    method = _named(name)
    losses = torch.tensor([1.0, bad_value, 2.0])
    with pytest.raises(ValueError, match=r"losses\[1\] for task 1 \('normals'\)"):
        method(losses, gramian=_good_gram())
    with pytest.raises(ValueError, match=r"losses\[1\] for task 1 \('normals'\)"):
        method.update(losses, gramian=_good_gram(), losses_after=torch.ones(M))


def test_non_finite_loss_without_names_names_the_index(name: str) -> None:
    method = FACTORIES[name](0)
    with pytest.raises(ValueError, match=r"losses\[2\] for task 2 is nan"):
        method(torch.tensor([1.0, 1.0, float("nan")]), gramian=_good_gram())


@pytest.mark.parametrize("bad", [[1.0, 2.0, 3.0], torch.ones(M, dtype=torch.long)])
def test_non_float_tensor_raises_type_error(name: str, bad: object) -> None:
    method = FACTORIES[name](0)
    with pytest.raises(TypeError, match="losses must be a"):
        method(bad, gramian=_good_gram())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "tasks, error, match",
    [
        (0, ValueError, "tasks must be >= 1"),
        (-2, ValueError, "tasks must be >= 1"),
        (True, TypeError, "tasks must be an int"),
        ("abc", TypeError, "tasks must be an int"),
        (2.0, TypeError, "tasks must be an int"),
        ([], ValueError, "at least one task"),
        (["a", "a", "b"], ValueError, r"unique names, got duplicates \['a'\]"),
        (["a", ""], TypeError, r"tasks\[1\] must be a non-empty task name"),
    ],
)
@pytest.mark.parametrize(
    "cls", [EqualWeighting, UncertaintyWeighting, GradNorm, DWA, RLW, FAMO, DBMTL]
)
def test_invalid_tasks_raise(
    cls: type[LossWeighting], tasks: object, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        cls(tasks)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        (UncertaintyWeighting, {"init_log_variance": float("nan")}, "init_log_variance"),
        (GradNorm, {"alpha": -0.1}, "alpha must be"),
        (GradNorm, {"lr": 0.0}, "lr must be"),
        (GradNorm, {"min_weight": 1.0}, "min_weight must be"),
        (DWA, {"temperature": 0.0}, "temperature must be"),
        (DWA, {"temperature": float("inf")}, "temperature must be"),
        (RLW, {"distribution": "gumbel"}, "distribution must be one of"),
        (FAMO, {"gamma": -1e-3}, "gamma must be"),
        (FAMO, {"lr": -1.0}, "lr must be"),
        (FAMO, {"logit_optimizer": "rmsprop"}, "logit_optimizer must be"),
        (DBMTL, {"beta": 1.0}, "beta must be"),
        (DBMTL, {"beta_sigma": -0.5}, "beta_sigma must be"),
        (DBMTL, {"eps": -1.0}, "eps must be"),
    ],
)
def test_invalid_hyperparameters_raise(
    cls: type[LossWeighting], kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        cls(M, **kwargs)


@pytest.mark.parametrize(
    "cls, kwargs",
    [(GradNorm, {"alpha": "1"}), (DWA, {"temperature": None}), (RLW, {"generator": 1.5})],
)
def test_hyperparameter_of_wrong_type_raises(
    cls: type[LossWeighting], kwargs: dict[str, object]
) -> None:
    with pytest.raises(TypeError, match=next(iter(kwargs))):
        cls(M, **kwargs)


@pytest.mark.parametrize("cls", [GradNorm, DBMTL])
def test_gramian_required_by_grad_norm_methods(cls: type[LossWeighting]) -> None:
    method = cls(M)
    assert method.requires_grad_norms
    with pytest.raises(ValueError, match=f"gramian is required by {cls.__name__}"):
        method.update(torch.ones(M))


@pytest.mark.parametrize(
    "gram, error, match",
    [
        (torch.eye(M - 1), ValueError, r"gramian must have shape \(3, 3\)"),
        (torch.full((M, M), float("nan")), ValueError, "finite"),
        (-torch.eye(M), ValueError, r"gramian\[0, 0\] for task 0 \('depth'\)"),
        (torch.eye(M).numpy(), TypeError, "gramian must be a torch.Tensor"),
    ],
)
@pytest.mark.parametrize("cls", [GradNorm, DBMTL])
def test_malformed_gramian_raises(
    cls: type[LossWeighting], gram: object, error: type, match: str
) -> None:
    method = cls(NAMES)
    with pytest.raises(error, match=match):
        method.update(torch.ones(M), gramian=gram)  # type: ignore[arg-type]


def test_only_famo_requires_losses_after() -> None:
    flags = {n: f(0).requires_losses_after for n, f in FACTORIES.items()}
    assert {n for n, v in flags.items() if v} == {"famo_adam", "famo_sgd"}
    with pytest.raises(ValueError, match=r"losses_after is required by FAMO\.update"):
        FAMO(M).update(torch.ones(M))


@pytest.mark.parametrize("name", ["dwa", "equal"])
def test_update_epoch_checks_mean_losses(name: str) -> None:
    with pytest.raises(ValueError, match=r"mean_losses must have shape \(3,\)"):
        FACTORIES[name](0).update_epoch(torch.ones(2))


# ----------------------------------------------------------------- task_gramian
def test_task_gramian_matches_per_task_gradients() -> None:
    gen = torch.Generator().manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    unused = torch.nn.Parameter(torch.ones(2))
    x = torch.randn(10, 4, generator=gen)
    y = torch.randn(10, 3, generator=gen)
    losses = ((net(x) - y) ** 2).mean(dim=0) * torch.tensor([1.0, 10.0, 0.1])
    params = [*net.parameters(), unused]
    gram = task_gramian(losses, params)
    rows = []
    for i in range(3):
        grads = torch.autograd.grad(losses[i], params, retain_graph=True, allow_unused=True)
        rows.append(
            torch.cat(
                [
                    (g if g is not None else torch.zeros_like(p)).flatten()
                    for g, p in zip(grads, params, strict=True)
                ]
            )
        )
    jac = torch.stack(rows)
    torch.testing.assert_close(gram, jac @ jac.T)
    losses.sum().backward()  # the graph was retained


def test_task_gramian_errors() -> None:
    w = torch.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match="1-dimensional"):
        task_gramian((w * 2).reshape(1, 2), [w])
    with pytest.raises(ValueError, match="requires grad"):
        task_gramian(w * 2, [torch.ones(2)])
