"""The architecture contract, checked for every architecture over several backbones."""

from __future__ import annotations

import pytest
import torch

from polytask.deep.architectures import Architecture

ARCHS = [
    "shared_bottom",
    "soft_sharing",
    "cross_stitch",
    "mmoe",
    "cgc",
    "ple2",
    "ple3",
    "task_graph",
    "esmm",
]
CASES = [(arch, bb) for arch in ARCHS for bb in ("mlp", "cnn")] + [
    ("shared_bottom", "transformer"),
    ("mmoe", "transformer"),
    ("cross_stitch", "transformer"),
    ("ple2", "transformer"),
]
REPRESENTATION = [(a, b) for a, b in CASES if a != "soft_sharing"]
# Backbone-independent properties: every architecture on MLPs, a few on CNNs.
LIGHT = [(arch, "mlp") for arch in ARCHS] + [
    ("cross_stitch", "cnn"),
    ("mmoe", "cnn"),
    ("ple2", "cnn"),
    ("task_graph", "cnn"),
]
LIGHT_REPRESENTATION = [(a, b) for a, b in LIGHT if a != "soft_sharing"]


def _task_grads_reached(model: Architecture, loss: torch.Tensor) -> set[str]:
    """Tasks whose own parameters receive a nonzero gradient from ``loss``."""
    model.zero_grad(set_to_none=True)
    loss.backward()
    reached = set()
    for task in model.task_names:
        for p in model.task_parameters(task):
            if p.grad is not None and bool(p.grad.abs().sum() > 0):
                reached.add(task)
    return reached


@pytest.mark.parametrize(("arch", "backbone"), CASES)
def test_outputs_have_the_task_keys_and_shapes(make_case, arch, backbone):
    case = make_case(arch, backbone)
    out = case.model(case.x)
    assert list(out) == list(case.model.task_names)
    assert set(out) == set(case.shapes)
    assert {t: tuple(y.shape) for t, y in out.items()} == case.shapes
    assert all(bool(torch.isfinite(y).all()) for y in out.values())


@pytest.mark.parametrize(("arch", "backbone"), CASES)
def test_shared_and_task_parameters_partition_all_parameters(make_case, arch, backbone):
    model = make_case(arch, backbone).model
    groups = [list(model.shared_parameters())]
    groups += [list(model.task_parameters(t)) for t in model.task_names]
    ids = [id(p) for group in groups for p in group]
    assert len(ids) == len(set(ids)), "a parameter is listed twice or in two parts"
    assert set(ids) == {id(p) for p in model.parameters()}
    if arch == "soft_sharing":
        assert groups[0] == []
    else:
        assert len(groups[0]) > 0


@pytest.mark.parametrize("arch", ARCHS)
def test_task_parameters_rejects_an_unknown_task(make_case, arch):
    model = make_case(arch, "mlp").model
    with pytest.raises(ValueError, match=r"unknown task 'nope'; known tasks: \[") as info:
        list(model.task_parameters("nope"))
    for task in model.task_names:
        assert repr(task) in str(info.value)


@pytest.mark.parametrize(("arch", "backbone"), LIGHT)
def test_losses_reach_exactly_the_documented_task_parameters(make_case, arch, backbone):
    case = make_case(arch, backbone)
    for task in case.model.task_names:
        out = case.model(case.x)
        reached = _task_grads_reached(case.model, out[task].square().sum())
        assert reached == set(case.reach[task]), task


@pytest.mark.parametrize(("arch", "backbone"), REPRESENTATION)
def test_forward_equals_decode_of_encode(make_case, arch, backbone):
    case = make_case(arch, backbone)
    model = case.model
    assert model.supports_representation
    features = model.encode(case.x)
    assert isinstance(features, (torch.Tensor, tuple))
    decoded = model.decode(features, case.x)
    out = model(case.x)
    assert list(decoded) == list(out)
    for task in out:
        assert torch.equal(decoded[task], out[task]), task


@pytest.mark.parametrize(("arch", "backbone"), LIGHT_REPRESENTATION)
def test_decode_does_not_depend_on_shared_parameters(make_case, arch, backbone):
    case = make_case(arch, backbone)
    model = case.model
    with torch.no_grad():
        features = model.encode(case.x)
        before = model.decode(features, case.x)
        for p in model.shared_parameters():
            p.add_(torch.randn_like(p))
        after = model.decode(features, case.x)
        moved = model(case.x)
    for task in before:
        assert torch.equal(before[task], after[task]), task
    # ...while the shared parameters do matter for the full forward pass
    assert any(not torch.allclose(before[t], moved[t]) for t in before)


@pytest.mark.parametrize(("arch", "backbone"), LIGHT_REPRESENTATION)
def test_gradients_through_the_representation_equal_direct_gradients(make_case, arch, backbone):
    """Per-task shared gradients via features (chain rule) equal autograd's direct ones."""
    case = make_case(arch, backbone)
    model = case.model
    shared = list(model.shared_parameters())
    for task in model.task_names:
        direct = torch.autograd.grad(model(case.x)[task].square().sum(), shared, allow_unused=True)
        features = model.encode(case.x)
        feats = (features,) if isinstance(features, torch.Tensor) else features
        loss = model.decode(features, case.x)[task].square().sum()
        grad_feats = torch.autograd.grad(loss, feats, allow_unused=True)
        pairs = [(f, g) for f, g in zip(feats, grad_feats, strict=True) if g is not None]
        via = torch.autograd.grad(
            [f for f, _ in pairs], shared, grad_outputs=[g for _, g in pairs], allow_unused=True
        )
        for d, v in zip(direct, via, strict=True):
            d0 = torch.zeros(()) if d is None else d
            v0 = torch.zeros(()) if v is None else v
            torch.testing.assert_close(v0 + torch.zeros_like(d0), d0 + torch.zeros_like(v0))


@pytest.mark.parametrize("arch", ["soft_sharing"])
def test_architectures_without_a_representation_refuse_encode(make_case, arch):
    case = make_case(arch, "mlp")
    assert not case.model.supports_representation
    with pytest.raises(NotImplementedError, match="no shared representation"):
        case.model.encode(case.x)
    with pytest.raises(NotImplementedError, match="no shared representation"):
        case.model.decode(case.x, case.x)


@pytest.mark.parametrize(("arch", "backbone"), LIGHT)
def test_state_dict_round_trip_reproduces_outputs(make_case, arch, backbone):
    source = make_case(arch, backbone, seed=0)
    target = make_case(arch, backbone, seed=1)
    before = target.model(source.x)
    target.model.load_state_dict(source.model.state_dict())
    out_src, out_tgt = source.model(source.x), target.model(source.x)
    for task in out_src:
        torch.testing.assert_close(out_tgt[task], out_src[task])
    assert any(not torch.allclose(before[t], out_src[t]) for t in out_src)


@pytest.mark.parametrize("arch", [a for a in ARCHS if a != "soft_sharing"])
def test_default_regularizer_is_zero(make_case, arch):
    model = make_case(arch, "mlp").model
    value = model.regularizer()
    assert value.shape == () and float(value) == 0.0


@pytest.mark.parametrize("arch", ARCHS)
def test_repr_names_the_tasks(make_case, arch):
    model = make_case(arch, "mlp").model
    assert f"tasks={list(model.task_names)}" in repr(model)
