"""TaskGraph, TaskNode and ESMM: validation, topological execution and ESMM's mathematics."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from polytask.deep.architectures import ESMM, MLP, TaskGraph, TaskNode


class Add(nn.Module):
    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return a + b


class Record(nn.Module):
    """Scales its input and records the order in which nodes run."""

    def __init__(self, name: str, log: list[str], scale: float) -> None:
        super().__init__()
        self.name, self.log, self.scale = name, log, scale

    def forward(self, *inputs: Tensor) -> Tensor:
        self.log.append(self.name)
        return self.scale * sum(inputs)  # type: ignore[return-value]


# ------------------------------------------------------------------------- TaskGraph


def test_task_graph_runs_nodes_in_topological_order():
    log: list[str] = []
    nodes = {
        "d": TaskNode(Record("d", log, 5.0), inputs=("c", "a")),
        "c": TaskNode(Record("c", log, 3.0), inputs=("b",)),
        "b": TaskNode(Record("b", log, 2.0), inputs=("a", "x")),
        "a": TaskNode(Record("a", log, 1.0)),
    }
    graph = TaskGraph(nodes)
    x = torch.randn(4, 2)
    out = graph(x)
    order = graph.execution_order
    assert log == list(order) and sorted(order) == ["a", "b", "c", "d"]
    for task, node in nodes.items():
        for dep in node.inputs:
            if dep != "x":
                assert order.index(dep) < order.index(task)
    assert list(out) == ["d", "c", "b", "a"]
    a = x
    b = 2.0 * (a + x)
    c = 3.0 * b
    torch.testing.assert_close(out["a"], a)
    torch.testing.assert_close(out["b"], b)
    torch.testing.assert_close(out["d"], 5.0 * (c + a))
    assert not graph.supports_representation
    assert list(graph.shared_parameters()) == []
    with pytest.raises(NotImplementedError, match="TaskGraph has no shared representation"):
        graph.encode(x)
    with pytest.raises(NotImplementedError, match="TaskGraph has no shared representation"):
        graph.decode(x, x)


@pytest.mark.parametrize(
    ("combine", "module", "expected"),
    [
        (None, Add(), lambda s, a: s + a),
        ("cat", nn.Identity(), lambda s, a: torch.cat([s, a], dim=-1)),
        ("sum", nn.Identity(), lambda s, a: s + a),
        (lambda xs: xs[0] * xs[1], nn.Identity(), lambda s, a: s * a),
    ],
)
def test_task_graph_combines_several_inputs(combine, module, expected):
    torch.manual_seed(0)
    encoder = nn.Linear(3, 2)
    graph = TaskGraph(
        {
            "a": TaskNode(nn.Linear(3, 2)),
            "b": TaskNode(module, inputs=("shared", "a"), combine=combine),
        },
        encoder=encoder,
    )
    x = torch.randn(5, 3)
    out = graph(x)
    torch.testing.assert_close(out["b"], expected(encoder(x), out["a"]))
    assert graph.supports_representation and type(graph).supports_representation


@pytest.mark.parametrize(
    ("edges", "on_cycle"),
    [
        ({"a": ("a",)}, ["a"]),
        ({"a": ("b",), "b": ("a",)}, ["a", "b"]),
        ({"a": ("x",), "b": ("a", "d"), "c": ("b",), "d": ("c",), "e": ("b",)}, ["b", "c", "d"]),
    ],
)
def test_task_graph_cycle_is_reported_with_its_tasks(edges, on_cycle):
    nodes = {t: TaskNode(nn.Identity(), inputs=inputs) for t, inputs in edges.items()}
    with pytest.raises(ValueError, match="nodes form a cycle") as info:
        TaskGraph(nodes)
    message = str(info.value)
    cycle_part = message.split(":", 1)[1].split("(")[0]
    names = {part.strip().strip("'") for part in cycle_part.split("->")}
    assert names == set(on_cycle)


def _graph_errors():
    lin = nn.Linear(2, 2)
    return [
        (([("a", TaskNode(lin))],), {}, TypeError, "nodes must be a mapping"),
        (({},), {}, ValueError, "nodes must name at least one task"),
        (({"a": lin},), {}, TypeError, r"nodes\['a'\] must be a TaskNode, got Linear"),
        (({"x": TaskNode(lin)},), {}, ValueError, "'x' is reserved"),
        (({"shared": TaskNode(lin)},), {}, ValueError, "'shared' is reserved"),
        (({"a": TaskNode(lin, "y")},), {}, ValueError,
         r"nodes\['a'\] reads unknown input 'y'; inputs are 'x', 'shared' or a task name"),
        (({"a": TaskNode(lin, "shared")},), {}, ValueError,
         r"nodes\['a'\] reads 'shared' but no encoder was given"),
        (({"a": TaskNode(lin)},), {"encoder": nn.Linear(2, 2)}, ValueError,
         "encoder is given but no node reads 'shared'"),
        (({"a": TaskNode(lin, "shared")},), {"encoder": "enc"}, TypeError,
         "encoder must be a torch.nn.Module"),
        (({"a": TaskNode(lin), "b": TaskNode(lin)},), {}, ValueError,
         "used by both task 'a' and task 'b'"),
    ]  # fmt: skip


@pytest.mark.parametrize(("args", "kwargs", "error", "match"), _graph_errors())
def test_task_graph_errors(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        TaskGraph(*args, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"module": "m"}, TypeError, "module must be a torch.nn.Module"),
        ({"inputs": ()}, ValueError, "inputs must name at least one input"),
        ({"inputs": 3}, TypeError, "inputs must be a string or a sequence"),
        ({"inputs": ("x", 1)}, TypeError, "inputs must be strings, got 1"),
        ({"inputs": ("x", "x")}, ValueError, "must not repeat a name"),
        ({"combine": "mean"}, ValueError, "combine must be None, 'cat', 'sum' or a callable"),
        ({"combine": 3}, TypeError, "combine must be None, 'cat', 'sum' or a callable"),
    ],
)
def test_task_node_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        TaskNode(**{"module": nn.Identity(), **kwargs})


def test_task_node_accepts_a_single_name():
    assert TaskNode(nn.Identity(), "shared").inputs == ("shared",)


# ------------------------------------------------------------------------------ ESMM


def _esmm(output="probability", seed=0):
    torch.manual_seed(seed)
    return ESMM(MLP([4, 8], activate_last=True), MLP([8, 1]), MLP([8, 1]), output=output)


def test_esmm_outputs_ctcvr_as_the_exact_product():
    model = _esmm()
    out = model(torch.randn(16, 4))
    assert model.task_names == ("ctr", "cvr", "ctcvr")
    assert torch.equal(out["ctcvr"], out["ctr"] * out["cvr"])
    for p in out.values():
        assert p.shape == (16, 1) and bool(((p > 0) & (p < 1)).all())
    assert list(model.task_parameters("ctcvr")) == []


def test_esmm_logit_output_matches_the_probability_output():
    prob, logit = _esmm("probability"), _esmm("logit", seed=1)
    logit.load_state_dict(prob.state_dict())
    x = torch.randn(16, 4)
    p, z = prob(x), logit(x)
    for task in ("ctr", "cvr", "ctcvr"):
        torch.testing.assert_close(torch.sigmoid(z[task]), p[task])


@pytest.mark.parametrize("scale", [1.0, 20.0, 200.0])
def test_esmm_ctcvr_logit_is_accurate_and_finite_for_extreme_logits(scale):
    model = _esmm("logit")
    product = model.heads[2]
    a = (scale * torch.randn(64, 1)).double().requires_grad_()
    b = (scale * torch.randn(64, 1)).double().requires_grad_()
    z = product(a.float(), b.float())
    assert bool(torch.isfinite(z).all())
    # reference in float64 by the textbook formula logit(p) = log p - log(1 - p),
    # valid wherever 1 - p does not round to 0 in float64
    log_p = F.logsigmoid(a.detach()) + F.logsigmoid(b.detach())
    ref = log_p - torch.log(-torch.expm1(log_p))
    valid = log_p < -1e-12
    assert bool(valid.any())
    torch.testing.assert_close(z[valid].double(), ref[valid], rtol=1e-4, atol=1e-4)
    # where p rounds to 1: both logits are large and logit(p) ≈ -log(e^-a + e^-b)
    big = ~valid
    approx = -torch.logaddexp(-a.detach(), -b.detach())
    torch.testing.assert_close(z[big].double(), approx[big], rtol=1e-4, atol=1e-3)
    y = (torch.rand(64, 1) < 0.5).float()
    loss = F.binary_cross_entropy_with_logits(product(a.float(), b.float()), y)
    loss.backward()
    assert bool(torch.isfinite(a.grad).all()) and bool(torch.isfinite(b.grad).all())


def _esmm_loss(out, click, buy):
    def bce(p, y):
        return F.binary_cross_entropy(p.clamp(1e-7, 1 - 1e-7), y)

    return bce(out["ctr"], click) + bce(out["ctcvr"], buy)


def test_esmm_training_decreases_the_loss_on_the_entire_space():
    model = _esmm()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(128, 4, generator=gen)
    click = (x[:, :1] + 0.3 * torch.randn(128, 1, generator=gen) > 0).float()
    buy = click * (x[:, 1:2] > 0.5).float()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    losses = []
    for _ in range(25):
        optimizer.zero_grad()
        loss = _esmm_loss(model(x), click, buy)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0]


def test_esmm_cvr_tower_learns_only_through_ctcvr():
    model = _esmm()
    x = torch.randn(8, 4)
    model(x)["ctr"].sum().backward()
    assert all(p.grad is None for p in model.task_parameters("cvr"))
    model.zero_grad()
    model(x)["ctcvr"].sum().backward()
    assert all(bool(p.grad.abs().sum() > 0) for p in model.task_parameters("cvr"))


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((3, nn.Linear(2, 1), nn.Linear(2, 1)), {}, TypeError, "encoder must be"),
        ((nn.Linear(2, 2), None, nn.Linear(2, 1)), {}, TypeError, "ctr_tower must be"),
        ((nn.Linear(2, 2), nn.Linear(2, 1), [1]), {}, TypeError, "cvr_tower must be"),
        ((nn.Linear(2, 2), nn.Linear(2, 1), nn.Linear(2, 1)), {"output": "logits"}, ValueError,
         "output must be 'probability' or 'logit', got 'logits'"),
    ],
)  # fmt: skip
def test_esmm_errors(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        ESMM(*args, **kwargs)


def test_esmm_rejects_one_tower_for_both_tasks():
    tower = nn.Linear(2, 1)
    with pytest.raises(ValueError, match="used by both task 'ctr' and task 'cvr'"):
        ESMM(nn.Linear(2, 2), tower, tower)
