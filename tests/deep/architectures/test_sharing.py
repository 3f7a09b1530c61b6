"""MLP, SharedBottom, SoftSharing and CrossStitch: behaviour, mathematics and errors."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import torch
from torch import nn

from polytask.deep.architectures import MLP, CrossStitch, CrossStitchUnit, SharedBottom, SoftSharing

# ---------------------------------------------------------------------------- MLP


@pytest.mark.parametrize(
    ("sizes", "dropout", "activate_last", "kinds"),
    [
        ([3, 2], 0.0, False, ["Linear"]),
        ([3, 2], 0.0, True, ["Linear", "Tanh"]),
        ([3, 5, 2], 0.0, False, ["Linear", "Tanh", "Linear"]),
        ([3, 5, 4, 2], 0.5, False, ["Linear", "Tanh", "Dropout"] * 2 + ["Linear"]),
    ],
)
def test_mlp_layers(sizes, dropout, activate_last, kinds):
    mlp = MLP(sizes, activation=nn.Tanh, dropout=dropout, activate_last=activate_last)
    assert [type(m).__name__ for m in mlp] == kinds
    linears = [m for m in mlp if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == list(pairwise(sizes))
    assert mlp(torch.randn(7, sizes[0])).shape == (7, sizes[-1])


def test_mlp_computes_the_composition():
    torch.manual_seed(0)
    mlp = MLP([3, 4, 2])
    x = torch.randn(5, 3)
    first, last = mlp[0], mlp[2]
    expected = torch.relu(x @ first.weight.T + first.bias) @ last.weight.T + last.bias
    torch.testing.assert_close(mlp(x), expected)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sizes": 3}, TypeError, "sizes must be a sequence"),
        ({"sizes": [3]}, ValueError, "at least two widths"),
        ({"sizes": [3, 0]}, ValueError, r"sizes\[1\] must be >= 1"),
        ({"sizes": [3, 2.5]}, TypeError, r"sizes\[1\] must be an int"),
        ({"sizes": [3, 2], "dropout": 1.0}, ValueError, r"dropout must be in \[0, 1\)"),
        ({"sizes": [3, 2], "dropout": "0.1"}, TypeError, "dropout must be a real number"),
        ({"sizes": [3, 2], "activation": 3}, TypeError, "activation must be callable"),
        ({"sizes": [3, 2], "activation": nn.ReLU()}, TypeError, "not a module instance"),
        ({"sizes": [3, 4, 2], "activation": lambda: 1}, TypeError, "build a torch.nn.Module"),
    ],
)
def test_mlp_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        MLP(**kwargs)


# ---------------------------------------------------------------------- SharedBottom


def test_shared_bottom_applies_each_head_to_the_encoding():
    torch.manual_seed(0)
    encoder = MLP([4, 6], activate_last=True)
    heads = {"a": nn.Linear(6, 1), "b": nn.Linear(6, 3)}
    model = SharedBottom(encoder, heads)
    x = torch.randn(5, 4)
    out = model(x)
    for task, head in heads.items():
        torch.testing.assert_close(out[task], head(encoder(x)))
    assert model.task_names == ("a", "b")


def _shared_bottom_errors():
    enc, head = nn.Linear(3, 3), nn.Linear(3, 1)
    return [
        ((3, {"a": head}), TypeError, "encoder must be a torch.nn.Module, got int"),
        ((enc, [head]), TypeError, "heads must be a mapping from task name"),
        ((enc, {}), ValueError, "heads must name at least one task"),
        ((enc, {1: head}), TypeError, "task names must be non-empty strings, got 1"),
        ((enc, {"": head}), TypeError, "task names must be non-empty strings"),
        ((enc, {"a": "head"}), TypeError, r"heads\['a'\] must be a torch.nn.Module"),
        ((enc, {"a": head, "b": head}), ValueError, "used by both task 'a' and task 'b'"),
        ((enc, {"a": enc}), ValueError, "used by both the shared part and task 'a'"),
    ]


@pytest.mark.parametrize(("args", "error", "match"), _shared_bottom_errors())
def test_shared_bottom_errors(args, error, match):
    with pytest.raises(error, match=match):
        SharedBottom(*args)


# ----------------------------------------------------------------------- SoftSharing


def _towers(seed=0, n_tasks=3):
    torch.manual_seed(seed)
    return {f"t{i}": MLP([3, 4, 2]) for i in range(n_tasks)}


def _reference_penalty(towers, strength, trace):
    """Independent NumPy computation of the soft-sharing penalty."""
    params = [
        {n: p.detach().numpy().astype(np.float64) for n, p in t.named_parameters()}
        for t in towers.values()
    ]
    total = 0.0
    for name in params[0]:
        stack = np.stack([p[name] for p in params])
        total += strength * float(np.sum((stack - stack.mean(axis=0)) ** 2))
        total += trace * float(np.linalg.norm(stack.reshape(len(params), -1), "nuc"))
    return total


@pytest.mark.parametrize(("strength", "trace"), [(0.3, 0.0), (0.0, 0.2), (0.1, 0.05)])
def test_soft_sharing_regularizer_matches_an_independent_computation(strength, trace):
    towers = _towers()
    model = SoftSharing(towers, strength=strength, trace_norm_strength=trace)
    expected = _reference_penalty(towers, strength, trace)
    assert float(model.regularizer().detach()) == pytest.approx(expected, rel=1e-5)


def test_soft_sharing_regularizer_gradient_pulls_towers_to_their_mean():
    towers = _towers()
    model = SoftSharing(towers, strength=0.5)
    model.regularizer().backward()
    per_task = [dict(t.named_parameters()) for t in model.towers]
    for name in per_task[0]:
        stack = torch.stack([p[name].detach() for p in per_task])
        expected = 2 * 0.5 * (stack - stack.mean(dim=0))  # d/dθ_t of λ Σ_s ‖θ_s − θ̄‖²
        grads = torch.stack([p[name].grad for p in per_task])
        torch.testing.assert_close(grads, expected)

    def spread():
        return sum(
            float(torch.stack([p[n].detach() for p in per_task]).var(dim=0).sum())
            for n in per_task[0]
        )

    before = spread()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert spread() < before


def test_soft_sharing_trace_norm_gradient_matches_finite_differences():
    torch.manual_seed(0)
    towers = {t: nn.Linear(3, 2, bias=False).double() for t in "abc"}
    model = SoftSharing(towers, strength=0.0, trace_norm_strength=1.0)
    weights = [tower.weight for tower in model.towers]

    def penalty(*ws):
        return torch.linalg.matrix_norm(torch.stack([w.reshape(-1) for w in ws]), ord="nuc")

    assert torch.autograd.gradcheck(penalty, [w.detach().requires_grad_() for w in weights])
    model.regularizer().backward()
    expected = torch.autograd.grad(penalty(*weights), weights)
    for w, g in zip(weights, expected, strict=True):
        torch.testing.assert_close(w.grad, g)


@pytest.mark.parametrize("strength", [0.0, 0.1])
def test_soft_sharing_couples_towers_only_through_the_regularizer(strength):
    model = SoftSharing(_towers(), strength=strength)
    x = torch.randn(4, 3)
    (model(x)["t0"].sum() + model.regularizer()).backward()
    other = [p.grad for p in model.task_parameters("t1")]
    reached = any(g is not None and bool(g.abs().sum() > 0) for g in other)
    assert reached == (strength > 0)
    assert list(model.shared_parameters()) == []


@pytest.mark.parametrize(
    ("towers", "kwargs", "error", "match"),
    [
        ({"a": nn.Linear(3, 2), "b": nn.Linear(3, 4)}, {}, ValueError,
         r"parameter 'weight' of task 'b' has shape \(4, 3\) but task 'a' has \(2, 3\)"),
        ({"a": nn.Linear(3, 2), "b": nn.Linear(3, 2, bias=False)}, {}, ValueError,
         "task 'b' has no parameter 'bias'"),
        ({"a": nn.Linear(3, 2, bias=False), "b": nn.Linear(3, 2)}, {}, ValueError,
         "task 'b' has parameter 'bias' that task 'a' lacks"),
        ({"a": nn.Linear(3, 2)}, {"strength": -1.0}, ValueError,
         "strength must be a finite number >= 0, got -1.0"),
        ({"a": nn.Linear(3, 2)}, {"strength": float("nan")}, ValueError, "strength must be"),
        ({"a": nn.Linear(3, 2)}, {"strength": "1"}, TypeError, "strength must be a real"),
        ({"a": nn.Linear(3, 2)}, {"trace_norm_strength": -0.1}, ValueError,
         "trace_norm_strength must be a finite number >= 0"),
        ([nn.Linear(3, 2)], {}, TypeError, "towers must be a mapping"),
    ],
)  # fmt: skip
def test_soft_sharing_errors(towers, kwargs, error, match):
    with pytest.raises(error, match=match):
        SoftSharing(towers, **kwargs)


def test_soft_sharing_rejects_one_tower_for_two_tasks():
    tower = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="used by both task 'a' and task 'b'"):
        SoftSharing({"a": tower, "b": tower})


# ----------------------------------------------------------------------- CrossStitch


def _columns(seed=0, tasks=("a", "b", "c")):
    torch.manual_seed(seed)
    columns = {t: [nn.Sequential(nn.Linear(4, 5), nn.Tanh()), nn.Linear(5, 5)] for t in tasks}
    heads = {t: nn.Linear(5, i + 1) for i, t in enumerate(tasks)}
    return columns, heads


def test_cross_stitch_default_init():
    model = CrossStitch(*_columns())
    alpha = model.units[0].alpha.detach()
    expected = torch.full((3, 3), 0.05)
    expected.fill_diagonal_(0.9)
    torch.testing.assert_close(alpha, expected)
    assert len(model.units) == 1
    single = CrossStitch(*_columns(tasks=("a",)))
    assert single.units[0].alpha.item() == 1.0


def test_cross_stitch_with_identity_mixing_equals_independent_columns():
    columns, heads = _columns()
    model = CrossStitch(columns, heads, init=(1.0, 0.0))
    x = torch.randn(6, 4)
    out = model(x)
    for task, (first, second) in columns.items():
        torch.testing.assert_close(out[task], heads[task](second(first(x))))


def test_cross_stitch_mixes_with_its_matrix():
    columns, heads = _columns()
    model = CrossStitch(columns, heads)
    with torch.no_grad():
        model.units[0].alpha.copy_(torch.randn(3, 3))
    alpha = model.units[0].alpha.detach()
    x = torch.randn(6, 4)
    tasks = list(columns)
    first = [columns[t][0](x) for t in tasks]
    out = model(x)
    for i, task in enumerate(tasks):
        mixed = sum(alpha[i, j] * first[j] for j in range(3))
        torch.testing.assert_close(out[task], heads[task](columns[task][1](mixed)))


def _conv_columns(seed=0):
    torch.manual_seed(seed)
    columns = {t: [nn.Conv2d(2, 3, 3, padding=1), nn.Conv2d(3, 3, 1)] for t in "ab"}
    heads = {t: nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2)) for t in "ab"}
    return columns, heads


def test_cross_stitch_per_channel_mixing():
    columns, heads = _conv_columns()
    model = CrossStitch(columns, heads, channels=[3])
    assert model.units[0].alpha.shape == (3, 2, 2)
    with torch.no_grad():
        model.units[0].alpha.copy_(torch.randn(3, 2, 2))
    alpha = model.units[0].alpha.detach()
    x = torch.randn(2, 2, 4, 4)
    first = [columns[t][0](x) for t in "ab"]
    out = model(x)
    for i, task in enumerate("ab"):
        mixed = torch.stack(
            [sum(alpha[c, i, j] * first[j][:, c] for j in range(2)) for c in range(3)], dim=1
        )
        torch.testing.assert_close(out[task], heads[task](columns[task][1](mixed)))


def test_per_channel_unit_with_equal_channels_equals_the_scalar_unit():
    scalar = CrossStitchUnit(2, same=0.7, other=0.3)
    per_channel = CrossStitchUnit(2, same=0.7, other=0.3, channels=4)
    acts = [torch.randn(3, 4, 5, 5), torch.randn(3, 4, 5, 5)]
    for a, b in zip(scalar(acts), per_channel(acts), strict=True):
        torch.testing.assert_close(a, b)


def test_cross_stitch_rejects_activations_of_different_shapes_naming_the_layer():
    torch.manual_seed(0)
    columns = {"a": [nn.Linear(4, 5), nn.Linear(5, 2)], "b": [nn.Linear(4, 6), nn.Linear(6, 2)]}
    model = CrossStitch(columns, {t: nn.Linear(2, 1) for t in "ab"})
    with pytest.raises(ValueError, match=r"layer 0 of the columns: task 'b' produces .*\(3, 6\)"):
        model(torch.randn(3, 4))


@pytest.mark.parametrize(
    ("activations", "match"),
    [
        ([torch.zeros(2, 3)], "expected 2 activations, got 1"),
        ([torch.zeros(2, 3), torch.zeros(2, 4)], "task number 1 has shape"),
    ],
)
def test_cross_stitch_unit_call_errors(activations, match):
    with pytest.raises(ValueError, match=match):
        CrossStitchUnit(2, 0.9, 0.1)(activations)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((0, 0.9, 0.1), {}, ValueError, "n_tasks must be >= 1, got 0"),
        ((2.0, 0.9, 0.1), {}, TypeError, "n_tasks must be an int"),
        ((2, "0.9", 0.1), {}, TypeError, "init must be a pair of real numbers"),
        ((2, 0.9, float("nan")), {}, ValueError, "init must be finite"),
        ((2, 0.9, 0.1), {"channels": 0}, ValueError, "channels must be >= 1"),
    ],
)
def test_cross_stitch_unit_constructor_errors(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        CrossStitchUnit(*args, **kwargs)


def test_per_channel_unit_rejects_the_wrong_channel_count():
    unit = CrossStitchUnit(2, 0.9, 0.1, channels=3, label="unit X")
    with pytest.raises(ValueError, match=r"unit X: per-channel mixing over 3 channels"):
        unit([torch.zeros(2, 4, 5), torch.zeros(2, 4, 5)])


def test_cross_stitch_loss_reaches_other_columns_but_not_their_last_layer_or_head():
    columns, heads = _columns()
    model = CrossStitch(columns, heads)
    model(torch.randn(6, 4))["a"].sum().backward()
    assert columns["b"][0][0].weight.grad.abs().sum() > 0
    assert columns["b"][1].weight.grad is None and heads["b"].weight.grad is None


def _cross_stitch_errors():
    lin = nn.Linear(4, 4)
    col = [nn.Linear(4, 4), nn.Linear(4, 4)]
    heads = {"a": nn.Linear(4, 1)}
    return [
        (([col], heads), {}, TypeError, "columns must be a mapping"),
        (({"a": lin}, heads), {}, TypeError, r"columns\['a'\] must be a sequence"),
        (({"a": [lin, "x"]}, heads), {}, TypeError, r"columns\['a'\]\[1\] must be a torch"),
        (({"a": [lin]}, heads), {}, ValueError, "at least 2 layers"),
        (({"a": col, "b": [*col, lin]}, {"a": lin, "b": lin}), {}, ValueError,
         r"columns\['b'\] has 3 layers but columns\['a'\] has 2"),
        (({"a": col}, {"b": nn.Linear(4, 1)}), {}, ValueError,
         r"heads must name exactly the tasks \['a'\]; missing \['a'\], unexpected \['b'\]"),
        (({"a": col}, heads), {"init": 0.9}, TypeError, "init must be a"),
        (({"a": col}, heads), {"init": (0.9, "x")}, TypeError, "pair of real numbers"),
        (({"a": col}, heads), {"init": (0.9, float("inf"))}, ValueError, "init must be finite"),
        (({"a": col}, heads), {"channels": 3}, TypeError, "channels must be a sequence"),
        (({"a": col}, heads), {"channels": [3, 3]}, ValueError,
         r"one entry per cross-stitch unit \(1\), got 2"),
        (({"a": col}, heads), {"channels": [0]}, ValueError, r"channels\[0\] must be >= 1"),
        (({"a": col, "b": col}, {"a": lin, "b": nn.Linear(4, 1)}), {}, ValueError,
         "used by both task 'a' and task 'b'"),
    ]  # fmt: skip


@pytest.mark.parametrize(("args", "kwargs", "error", "match"), _cross_stitch_errors())
def test_cross_stitch_errors(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        CrossStitch(*args, **kwargs)


def test_cross_stitch_decode_rejects_wrong_features():
    model = CrossStitch(*_columns())
    with pytest.raises(ValueError, match="tuple of 3 tensors"):
        model.decode(torch.zeros(2, 5), torch.zeros(2, 4))
