"""MMoE, CGC and PLE: gating mathematics, equivalences and errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from polytask.deep.architectures import CGC, MLP, PLE, MMoE, PLELevel, SharedBottom

TASKS = ("a", "b")


def _mmoe(n_experts=3, seed=0, **kwargs):
    torch.manual_seed(seed)
    experts = [MLP([5, 4], activate_last=True) for _ in range(n_experts)]
    towers = {t: MLP([4, 3, i + 1]) for i, t in enumerate(TASKS)}
    kwargs.setdefault("gate_input_dim", 5)
    return MMoE(experts, towers, **kwargs)


# ------------------------------------------------------------------------------ MMoE


def test_mmoe_gate_weights_are_distributions():
    model = _mmoe()
    weights = model.gate_weights(torch.randn(7, 5))
    for w in weights.values():
        assert w.shape == (7, 3)
        assert bool((w >= 0).all())
        torch.testing.assert_close(w.sum(dim=1), torch.ones(7))


def test_mmoe_matches_a_loop_reference():
    model = _mmoe()
    x = torch.randn(6, 5)
    out = model(x)
    experts = [expert(x) for expert in model.experts]
    for i, task in enumerate(TASKS):
        gate = model.gates[i].linear
        logits = x @ gate.weight.T + gate.bias
        g = torch.exp(logits) / torch.exp(logits).sum(dim=1, keepdim=True)
        mixed = sum(g[:, [k]] * experts[k] for k in range(3))
        torch.testing.assert_close(out[task], model.towers[i](mixed))


def test_mmoe_with_one_expert_equals_shared_bottom_with_copied_weights():
    model = _mmoe(n_experts=1)
    torch.manual_seed(1)
    bottom = SharedBottom(
        MLP([5, 4], activate_last=True), {t: MLP([4, 3, i + 1]) for i, t in enumerate(TASKS)}
    )
    bottom.encoder.load_state_dict(model.experts[0].state_dict())
    for head, tower in zip(bottom.heads, model.towers, strict=True):
        head.load_state_dict(tower.state_dict())
    x = torch.randn(6, 5)
    out, ref = model(x), bottom(x)
    for task in TASKS:
        torch.testing.assert_close(out[task], ref[task])


def test_mmoe_with_constant_gates_averages_the_experts():
    model = _mmoe()
    with torch.no_grad():
        for gate in model.gates:
            gate.linear.weight.zero_()
            gate.linear.bias.fill_(0.7)
    x = torch.randn(6, 5)
    mean = torch.stack([expert(x) for expert in model.experts]).mean(dim=0)
    out = model(x)
    for i, task in enumerate(TASKS):
        torch.testing.assert_close(out[task], model.towers[i](mean))


def test_mmoe_accepts_custom_gates_reading_the_raw_input():
    torch.manual_seed(0)
    experts = [nn.Conv2d(1, 2, 3, padding=1) for _ in range(2)]
    gates = {t: nn.Sequential(nn.Conv2d(1, 1, 3), nn.Flatten(), nn.LazyLinear(2)) for t in TASKS}
    towers = {t: nn.Sequential(nn.Flatten(), nn.Linear(2 * 5 * 5, 1)) for t in TASKS}
    for gate in gates.values():
        gate(torch.zeros(1, 1, 5, 5))  # materialise the lazy layer
    model = MMoE(experts, towers, gates=gates)
    out = model(torch.randn(3, 1, 5, 5))
    assert {t: y.shape for t, y in out.items()} == {t: (3, 1) for t in TASKS}


def test_mmoe_call_errors():
    model = _mmoe()
    with pytest.raises(ValueError, match=r"gate of task 'a': input has 4 features .* expects 5"):
        model.gate_weights(torch.randn(3, 4))
    bad_gates = {t: nn.Linear(5, 2) for t in TASKS}  # 2 logits for 3 experts
    experts = [nn.Linear(5, 4) for _ in range(3)]
    model = MMoE(experts, {t: nn.Linear(4, 1) for t in TASKS}, gates=bad_gates)
    with pytest.raises(
        ValueError, match=r"gate of task 'a' must return logits of shape \(batch, 3\), got \(3, 2\)"
    ):
        model(torch.randn(3, 5))
    model = MMoE([nn.Linear(5, 4), nn.Linear(5, 3)], {t: nn.Linear(4, 1) for t in TASKS}, 5)
    with pytest.raises(ValueError, match=r"experts\[1\] returns shape \(3, 3\) but experts\[0\]"):
        model(torch.randn(3, 5))
    with pytest.raises(TypeError, match="features must be the tensor returned by encode"):
        model.decode((torch.zeros(3, 2, 4),), torch.zeros(3, 5))


def _mmoe_errors():
    e, t = nn.Linear(5, 4), {"a": nn.Linear(4, 1)}
    return [
        ((e, t, 5), {}, TypeError, "experts must be a sequence of torch.nn.Module"),
        (([], t, 5), {}, ValueError, r"experts must hold at least 1 module\(s\), got 0"),
        (([e, 3], t, 5), {}, TypeError, r"experts\[1\] must be a torch.nn.Module"),
        (([e], [nn.Linear(4, 1)], 5), {}, TypeError, "towers must be a mapping"),
        (([e], t), {}, ValueError, "gate_input_dim is required when gates is None"),
        (([e], t, 0), {}, ValueError, "gate_input_dim must be >= 1, got 0"),
        (([e], t, 5.0), {}, TypeError, "gate_input_dim must be an int"),
        (([e], t), {"gates": {"b": nn.Linear(5, 1)}}, ValueError,
         r"gates must name exactly the tasks \['a'\]"),
        (([e], t), {"gates": {"a": 1}}, TypeError, r"gates\['a'\] must be a torch.nn.Module"),
        (([e], {"a": e}, 5), {}, ValueError, "used by both the shared part and task 'a'"),
    ]  # fmt: skip


@pytest.mark.parametrize(("args", "kwargs", "error", "match"), _mmoe_errors())
def test_mmoe_errors(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        MMoE(*args, **kwargs)


# ------------------------------------------------------------------------ CGC and PLE


def _level(d_in, d_out=4, n_shared=2, n_task=1, **kwargs):
    kwargs.setdefault("gate_input_dim", d_in)
    return PLELevel(
        shared_experts=[MLP([d_in, d_out], activate_last=True) for _ in range(n_shared)],
        task_experts={t: [MLP([d_in, d_out], activate_last=True) for _ in range(n_task)]
                      for t in TASKS},
        **kwargs,
    )  # fmt: skip


def _ple(n_levels, seed=0):
    torch.manual_seed(seed)
    levels = [_level(5 if k == 0 else 4, n_task=1 + k % 2) for k in range(n_levels)]
    return PLE(levels, {t: MLP([4, i + 1]) for i, t in enumerate(TASKS)})


@pytest.mark.parametrize("n_levels", [1, 2, 3])
def test_ple_shapes_and_structure(n_levels):
    model = _ple(n_levels)
    x = torch.randn(6, 5)
    out = model(x)
    assert {t: tuple(y.shape) for t, y in out.items()} == {"a": (6, 1), "b": (6, 2)}
    assert [layer.shared_gate is None for layer in model.levels] == [False] * (n_levels - 1) + [
        True
    ]
    features = model.encode(x)
    assert len(features) == (1 if n_levels == 1 else 1 + len(TASKS))
    assert features[0].shape == (6, 2, 4)
    weights = model.gate_weights(x)
    assert len(weights) == n_levels
    for k, level in enumerate(weights):
        for w in level.values():
            assert w.shape == (6, 2 + 1 + k % 2)
            torch.testing.assert_close(w.sum(dim=1), torch.ones(6))


def _softmax_gate(gate, inp):
    lin = gate.linear
    logits = inp.reshape(inp.shape[0], -1) @ lin.weight.T + lin.bias
    return torch.softmax(logits, dim=1)


def test_two_level_ple_matches_a_reference_written_from_the_paper():
    model = _ple(2)
    x = torch.randn(6, 5)
    first, last = model.levels
    # level 1: task gates over (own experts, shared experts); shared gate over everything
    shared = [e(x) for e in first.shared_experts]
    own = [[e(x) for e in first.task_experts[i]] for i in range(2)]
    task_out = []
    for i in range(2):
        g = _softmax_gate(first.task_gates[i], x)
        pool = own[i] + shared
        task_out.append(sum(g[:, [j]] * pool[j] for j in range(len(pool))))
    g = _softmax_gate(first.shared_gate, x)
    pool = own[0] + own[1] + shared
    shared_out = sum(g[:, [j]] * pool[j] for j in range(len(pool)))
    # level 2 (final): task gates read the task's level-1 output; no shared gate
    out = model(x)
    for i, task in enumerate(TASKS):
        pool = [e(task_out[i]) for e in last.task_experts[i]]
        pool += [e(shared_out) for e in last.shared_experts]
        g = _softmax_gate(last.task_gates[i], task_out[i])
        mixed = sum(g[:, [j]] * pool[j] for j in range(len(pool)))
        torch.testing.assert_close(out[task], model.towers[i](mixed))


def test_cgc_equals_a_one_level_ple_with_copied_weights():
    torch.manual_seed(0)
    cgc = CGC(
        [MLP([5, 4], activate_last=True) for _ in range(2)],
        {t: [MLP([5, 4], activate_last=True) for _ in range(3)] for t in TASKS},
        {t: MLP([4, 1]) for t in TASKS},
        gate_input_dim=5,
    )
    torch.manual_seed(1)
    ple = PLE([_level(5, n_task=3)], {t: MLP([4, 1]) for t in TASKS})
    x = torch.randn(4, 5)
    different = ple(x)
    ple.load_state_dict(cgc.state_dict())
    out_cgc, out_ple = cgc(x), ple(x)
    for task in TASKS:
        torch.testing.assert_close(out_cgc[task], out_ple[task])
        assert not torch.allclose(different[task], out_cgc[task])


def test_ple_custom_gates():
    torch.manual_seed(0)
    level = _level(
        5,
        task_gates={t: nn.Linear(5, 3) for t in TASKS},
        shared_gate=nn.Linear(5, 4),
        gate_input_dim=None,
    )
    model = PLE([level, _level(4)], {t: nn.Linear(4, 1) for t in TASKS})
    assert isinstance(model.levels[0].shared_gate, nn.Linear)
    assert model(torch.randn(3, 5))["a"].shape == (3, 1)


def test_ple_call_errors():
    torch.manual_seed(0)
    level = PLELevel([nn.Linear(5, 4)], {t: [nn.Linear(5, 3)] for t in TASKS}, 5)
    model = PLE([level], {t: nn.Linear(4, 1) for t in TASKS})
    with pytest.raises(ValueError, match=r"levels\[0\]: task 'a': task experts return shape"):
        model(torch.randn(2, 5))
    level = PLELevel([nn.Linear(5, 4), nn.Linear(5, 2)], {t: [nn.Linear(5, 4)] for t in TASKS}, 5)
    model = PLE([level], {t: nn.Linear(4, 1) for t in TASKS})
    with pytest.raises(ValueError, match=r"levels\[0\].shared_experts\[1\] returns shape"):
        model(torch.randn(2, 5))
    with pytest.raises(ValueError, match="tuple of 1 tensors returned by encode"):
        model.decode(torch.zeros(2, 2, 4), torch.zeros(2, 5))


def _ple_errors():
    towers = {t: nn.Linear(4, 1) for t in TASKS}
    ok = {
        "shared_experts": [nn.Linear(5, 4)],
        "task_experts": {t: [nn.Linear(5, 4)] for t in TASKS},
    }

    def level(**changes):
        return PLELevel(**{**ok, "gate_input_dim": 5, **changes})

    return [
        ((level(), towers), TypeError, "levels must be a sequence of PLELevel"),
        (([], towers), ValueError, "levels must hold at least one PLELevel"),
        (([ok], towers), TypeError, r"levels\[0\] must be a PLELevel, got dict"),
        (([level(shared_experts=[])], towers), ValueError,
         r"levels\[0\].shared_experts must hold at least 1"),
        (([level(task_experts=[nn.Linear(5, 4)])], towers), TypeError,
         r"levels\[0\].task_experts must be a mapping"),
        (([level(task_experts={"a": [nn.Linear(5, 4)]})], towers), ValueError,
         r"levels\[0\].task_experts must name exactly the tasks \['a', 'b'\]; missing \['b'\]"),
        (([level(task_experts={"a": [], "b": [nn.Linear(5, 4)]})], towers), ValueError,
         r"levels\[0\].task_experts\['a'\] must hold at least 1"),
        (([level(), level(gate_input_dim=None)], towers), ValueError,
         r"levels\[1\].gate_input_dim is required"),
        (([level(gate_input_dim=-2)], towers), ValueError,
         r"levels\[0\].gate_input_dim must be >= 1"),
        (([level(shared_gate=nn.Linear(5, 3))], towers), ValueError,
         r"levels\[0\].shared_gate must be None: the final level has no shared gate"),
        (([level(task_gates={"a": nn.Linear(5, 2)})], towers), ValueError,
         r"levels\[0\].task_gates must name exactly the tasks"),
        (([level(), level(shared_gate="gate")], towers), ValueError,
         r"levels\[1\].shared_gate must be None"),
        (([level(shared_gate="gate"), level()], towers), TypeError,
         r"levels\[0\].shared_gate must be a torch.nn.Module"),
        (([level(shared_experts=towers["a"])], towers), TypeError,
         r"levels\[0\].shared_experts must be a sequence"),
    ]  # fmt: skip


@pytest.mark.parametrize(("args", "error", "match"), _ple_errors())
def test_ple_errors(args, error, match):
    with pytest.raises(error, match=match):
        PLE(*args)


def test_ple_rejects_a_module_reused_across_tasks():
    expert = nn.Linear(5, 4)
    level = PLELevel([nn.Linear(5, 4)], {t: [expert] for t in TASKS}, 5)
    with pytest.raises(ValueError, match="used by both task 'a' and task 'b'"):
        PLE([level], {t: nn.Linear(4, 1) for t in TASKS})


def test_cgc_errors_name_the_level():
    with pytest.raises(ValueError, match=r"levels\[0\].gate_input_dim is required"):
        CGC([nn.Linear(5, 4)], {"a": [nn.Linear(5, 4)]}, {"a": nn.Linear(4, 1)})
