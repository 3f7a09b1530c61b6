"""Input stems (LeNet, embedding) and the architecture builders that place them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from polytask import _builders as b
from polytask._config_checks import ConfigError
from polytask._config_models import parse_deep
from polytask.deep._architectures.stems import (
    EmbeddingSpec,
    EmbeddingStem,
    LeNetSpec,
    LeNetStem,
    StemSpecError,
    make_stem,
    parse_stem,
)
from polytask.deep.aggregation import Sum
from polytask.deep.architectures import CGC, PLE, CrossStitch, MMoE, PLELevel, SoftSharing
from polytask.deep.backward import mtl_backward

LENET = {"type": "lenet", "channels": [3, 4], "image": [16, 20]}  # small but valid
EMBED = {"type": "embedding", "n_ids": 30, "dim": 3}
BUILDERS: dict[str, Callable[..., Any]] = {
    "shared_bottom": lambda d, o, s: b.shared_bottom(d, o, hidden=[6], tower=[4], stem=s),
    "mmoe": lambda d, o, s: b.mmoe(d, o, n_experts=3, expert=[6], tower=[4], stem=s),
    "cgc": lambda d, o, s: b.cgc(d, o, n_shared=2, n_task=1, expert=[6], tower=[], stem=s),
    "ple": lambda d, o, s: b.ple(d, o, n_levels=2, expert=[6], tower=[4], stem=s),
    "cross_stitch": lambda d, o, s: b.cross_stitch(d, o, hidden=[6, 5], stem=s),
    "soft_sharing": lambda d, o, s: b.soft_sharing(d, o, hidden=[6], stem=s),
}
SHARED_STEM = ("shared_bottom", "mmoe", "cgc", "ple")
OUTPUTS = {"a": 2, "b": 2}


def _lenet_side(n: int) -> int:
    """Closed form of two valid 5x5 convolutions each followed by a 2x2 floor pooling."""
    return ((n - 4) // 2 - 4) // 2


def _inputs(stem: dict[str, Any], n: int = 4, seed: int = 0) -> tuple[torch.Tensor, int]:
    g = torch.Generator().manual_seed(seed)
    if stem["type"] == "lenet":
        d = stem["image"][0] * stem["image"][1]
        return torch.rand(n, d, generator=g), d
    d = 5
    return torch.randint(0, stem["n_ids"], (n, d), generator=g).float(), d


def _stems_of(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (LeNetStem, EmbeddingStem))]


def _ids(params: Any) -> set[int]:
    return {id(p) for p in params}


# ------------------------------------------------------------------------- the stems


@pytest.mark.parametrize(("image", "channels"), [((28, 28), (10, 20)), ((36, 36), (10, 20)),
                                                 ((16, 20), (3, 4)), ((17, 31), (2, 5))])
def test_lenet_output_width_matches_the_closed_form(image, channels):
    stem = LeNetStem(image=image, channels=channels)
    expected = channels[1] * _lenet_side(image[0]) * _lenet_side(image[1])
    out = stem(torch.zeros(2, image[0] * image[1]))
    assert out.shape == (2, expected) == (2, stem.out_features)
    assert LeNetSpec(channels, image).out_features == expected


def test_default_lenet_is_the_320_feature_multimnist_encoder():
    module, width = make_stem({"type": "lenet"}, 784)
    assert width == 320
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (1, 10, (5, 5)), (10, 20, (5, 5))]


def test_lenet_computes_conv_pool_relu_twice_on_row_major_images():
    torch.manual_seed(0)
    stem = LeNetStem(image=(16, 20), channels=(3, 4))
    x = torch.randn(3, 16 * 20)
    c1, c2 = (m for m in stem.modules() if isinstance(m, nn.Conv2d))
    img = x.reshape(3, 1, 16, 20)
    h = F.relu(F.max_pool2d(F.conv2d(img, c1.weight, c1.bias), 2))
    h = F.relu(F.max_pool2d(F.conv2d(h, c2.weight, c2.bias), 2))
    torch.testing.assert_close(stem(x), h.flatten(1))
    torch.testing.assert_close(stem(img), h.flatten(1))  # (n, 1, H, W) works too


def test_embedding_stem_concatenates_the_rows_of_one_table():
    torch.manual_seed(0)
    stem = EmbeddingStem(n_ids=7, dim=3, n_positions=4)
    ids = np.array([[0, 6, 2, 2], [5, 1, 0, 3]])
    table = stem.embedding.weight.detach().numpy()
    expected = np.stack([np.concatenate([table[i] for i in row]) for row in ids])
    out = stem(torch.tensor(ids, dtype=torch.float32))
    np.testing.assert_allclose(out.detach().numpy(), expected)
    assert out.shape == (2, 12)
    torch.testing.assert_close(stem(torch.tensor(ids)), out)  # integer tensors too


@pytest.mark.parametrize("spec", [LENET, EMBED])
def test_gradients_reach_every_stem_parameter(spec):
    x, d = _inputs(spec)
    module, width = make_stem(spec, d)
    out = module(x)
    assert out.shape == (x.shape[0], width)
    out.square().sum().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(("bad", "match"), [
    ([[0.0, 7.0]], r"stem\.n_ids: ids must lie in \[0, 7\)"),
    ([[-1.0, 2.0]], r"stem\.n_ids"),
    ([[float("inf"), 2.0]], r"stem\.n_ids"),
    ([[0.5, 2.0]], "integer ids"),
    ([[float("nan"), 2.0]], "integer ids"),
])
def test_embedding_rejects_ids_it_cannot_look_up(bad, match):
    stem = EmbeddingStem(n_ids=7, dim=2, n_positions=2)
    with pytest.raises(ValueError, match=match):
        stem(torch.tensor(bad))


@pytest.mark.parametrize(("stem", "x", "match"), [
    (EmbeddingStem(7, 2, 2), torch.zeros(3, 4), r"shape \(batch, 2\)"),
    (LeNetStem((16, 16)), torch.zeros(3, 100), r"stem\.image.*\(batch, 256\)"),
])
def test_stems_reject_inputs_of_the_wrong_width(stem, x, match):
    with pytest.raises(ValueError, match=match):
        stem(x)


@pytest.mark.parametrize(("spec", "key"), [
    (5, "stem"),
    ({"n_ids": 3, "dim": 2}, "stem.type"),
    ({"type": "conv"}, "stem.type"),
    ({"type": "lenet", "kernel": 3}, "stem.kernel"),
    ({"type": "lenet", "channels": [10]}, "stem.channels"),
    ({"type": "lenet", "channels": [10, 0]}, "stem.channels[1]"),
    ({"type": "lenet", "channels": "10,20"}, "stem.channels"),
    ({"type": "lenet", "image": [10, 28]}, "stem.image"),
    ({"type": "lenet", "image": [28.0, 28]}, "stem.image[0]"),
    ({"type": "embedding", "dim": 2}, "stem.n_ids"),
    ({"type": "embedding", "n_ids": 3}, "stem.dim"),
    ({"type": "embedding", "n_ids": 3, "dim": 0}, "stem.dim"),
    ({"type": "embedding", "n_ids": True, "dim": 2}, "stem.n_ids"),
    ({"type": "embedding", "n_ids": 3, "dim": 2, "image": 4}, "stem.image"),
])
def test_invalid_specs_name_their_key(spec, key):
    with pytest.raises(StemSpecError) as info:
        parse_stem(spec)
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ")
    assert isinstance(info.value, ValueError)


def test_parse_stem_defaults_and_square_images():
    assert parse_stem({"type": "lenet"}) == LeNetSpec((10, 20), (28, 28))
    square = parse_stem({"type": "lenet", "image": 36})
    assert isinstance(square, LeNetSpec) and square.image == (36, 36)
    assert parse_stem(EMBED) == EmbeddingSpec(30, 3)


def test_make_stem_checks_the_input_width():
    with pytest.raises(StemSpecError, match=r"stem\.image: \[28, 28\] means 784 .* have 100"):
        make_stem({"type": "lenet"}, 100)
    with pytest.raises(ValueError, match="in_features must be a positive integer"):
        make_stem(EMBED, 0)


# ------------------------------------------------------------------ in the builders


@pytest.mark.parametrize("arch", sorted(BUILDERS))
@pytest.mark.parametrize("spec", [LENET, EMBED], ids=["lenet", "embedding"])
def test_every_builder_takes_a_stem(arch, spec):
    torch.manual_seed(0)
    x, d = _inputs(spec)
    model = BUILDERS[arch](d, OUTPUTS, spec)
    out = model(x)
    assert {t: tuple(y.shape) for t, y in out.items()} == {"a": (4, 2), "b": (4, 2)}
    stems = _stems_of(model)
    assert len(stems) == (1 if arch in SHARED_STEM else len(OUTPUTS))
    sum(y.square().sum() for y in out.values()).backward()
    for stem in stems:
        for p in stem.parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0


@pytest.mark.parametrize("arch", sorted(BUILDERS))
def test_stem_parameters_fall_in_the_right_part(arch):
    model = BUILDERS[arch](5, OUTPUTS, EMBED)
    shared = _ids(model.shared_parameters())
    per_task = {t: _ids(model.task_parameters(t)) for t in OUTPUTS}
    every = _ids(model.parameters())
    assert shared | per_task["a"] | per_task["b"] == every
    assert not (shared & per_task["a"]) and not (shared & per_task["b"])
    assert not (per_task["a"] & per_task["b"])
    stems = _stems_of(model)
    if arch in SHARED_STEM:
        assert _ids(stems[0].parameters()) <= shared
    else:
        for stem, t in zip(stems, OUTPUTS, strict=True):
            assert _ids(stem.parameters()) <= per_task[t]


@pytest.mark.parametrize("arch", SHARED_STEM)
def test_a_shared_stem_runs_once_per_forward(arch):
    model = BUILDERS[arch](5, OUTPUTS, EMBED)
    calls = []
    (stem,) = _stems_of(model)
    stem.register_forward_hook(lambda *args: calls.append(1))
    x, _ = _inputs(EMBED)
    model(x)
    assert len(calls) == 1


def test_gates_read_the_stem_output():
    torch.manual_seed(0)
    model = b.mmoe(5, OUTPUTS, n_experts=3, expert=[6], stem=EMBED)
    x, _ = _inputs(EMBED)
    stem = model.stem
    assert isinstance(stem, EmbeddingStem)
    z = stem(x)
    for t, gate in zip(model.task_names, model.gates, strict=True):
        torch.testing.assert_close(model.gate_weights(x)[t], torch.softmax(gate(z), dim=1))
    # the gate receives gradient through z: changing the stem changes the gate weights
    with torch.no_grad():
        stem.embedding.weight.add_(1.0)
    assert not torch.allclose(model.gate_weights(x)["a"], torch.softmax(model.gates[0](z), 1))


@pytest.mark.parametrize("make", [
    lambda: b.mmoe(5, OUTPUTS, n_experts=3, expert=[6], tower=[4], stem=EMBED),
    lambda: b.cgc(5, OUTPUTS, expert=[6], tower=[4], stem=EMBED),
    lambda: b.ple(5, OUTPUTS, n_levels=2, expert=[6], stem=EMBED),
    lambda: b.shared_bottom(5, OUTPUTS, hidden=[6], stem=EMBED),
], ids=["mmoe", "cgc", "ple", "shared_bottom"])
def test_representation_split_gives_the_true_per_task_gradients(make):
    torch.manual_seed(0)
    model = make()
    x, _ = _inputs(EMBED, n=6)
    target = torch.randn(6, 2)
    torch.testing.assert_close(model.decode(model.encode(x), x)["a"], model(x)["a"])
    shared = list(model.shared_parameters())
    for t in OUTPUTS:
        encoded = model.encode(x)
        feats = encoded if isinstance(encoded, tuple) else (encoded,)
        loss = (model.decode(encoded, x)[t] - target).square().mean()
        grads = torch.autograd.grad(loss, feats, retain_graph=True, allow_unused=True)
        cot = [torch.zeros_like(f) if c is None else c
               for f, c in zip(feats, grads, strict=True)]
        via_features = torch.autograd.grad(feats, shared, cot, retain_graph=True,
                                           allow_unused=True)
        direct = torch.autograd.grad(loss, shared, allow_unused=True)
        for v, g in zip(via_features, direct, strict=True):
            torch.testing.assert_close(v, g)


@pytest.mark.parametrize("mode", ["parameter", "representation"])
@pytest.mark.parametrize("arch", ["mmoe", "cgc"])
def test_mtl_backward_with_features_matches_plain_autograd(arch, mode):
    torch.manual_seed(1)
    model = BUILDERS[arch](5, OUTPUTS, EMBED)
    x, _ = _inputs(EMBED, n=6)
    target = torch.randn(6, 2)

    def losses(preds: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.stack([(preds[t] - target).square().mean() for t in OUTPUTS])

    reference = torch.autograd.grad(losses(model(x)).sum(), list(model.shared_parameters()))
    feats = model.encode(x)
    mtl_backward(losses(model.decode(feats, x)), model.shared_parameters(), method=Sum(),
                 mode=mode, features=feats)
    for p, g in zip(model.shared_parameters(), reference, strict=True):
        torch.testing.assert_close(p.grad, g)


def test_architectures_check_the_stem_and_the_features_it_adds():
    with pytest.raises(TypeError, match=r"stem must be a torch\.nn\.Module"):
        MMoE([nn.Linear(3, 2)], {"a": nn.Linear(2, 1)}, gate_input_dim=3, stem="lenet")  # type: ignore[arg-type]
    level = PLELevel([nn.Linear(3, 2)], {"a": [nn.Linear(3, 2)]}, gate_input_dim=3)
    with pytest.raises(TypeError, match=r"stem must be a torch\.nn\.Module"):
        PLE([level], {"a": nn.Linear(2, 1)}, stem=3)  # type: ignore[arg-type]
    x, _ = _inputs(EMBED)
    mixture = b.mmoe(5, OUTPUTS, stem=EMBED)
    stacked, _z = mixture.encode(x)
    with pytest.raises(TypeError, match=r"pair \(stacked, z\).*has a stem"):
        mixture.decode(stacked, x)
    gated = b.cgc(5, OUTPUTS, stem=EMBED)
    assert isinstance(gated, CGC)
    shared, _z = gated.encode(x)
    with pytest.raises(ValueError, match="tuple of 2 tensors"):
        gated.decode((shared,), x)


def test_cross_stitch_mixes_the_stem_outputs():
    model = b.cross_stitch(5, OUTPUTS, hidden=[6, 5], stem=EMBED)
    assert isinstance(model, CrossStitch)
    # columns: stem, 6, 5 -> units after the stem and after the first hidden layer
    assert len(model.units) == 2
    assert [type(m).__name__ for m in _stems_of(model.columns)] == ["EmbeddingStem"] * 2
    assert len(b.cross_stitch(5, OUTPUTS, hidden=[6, 5]).units) == 1


def test_soft_sharing_penalty_ties_the_stems():
    torch.manual_seed(0)
    model = b.soft_sharing(5, OUTPUTS, hidden=[4], strength=0.5, stem=EMBED)
    assert isinstance(model, SoftSharing)
    tower_a, tower_b = (m for m in model.towers if isinstance(m, nn.Sequential))
    with torch.no_grad():  # identical towers except for the stems
        for pa, pb in zip(tower_a[1].parameters(), tower_b[1].parameters(), strict=True):
            pb.copy_(pa)
    stem_a, stem_b = (s for s in (tower_a[0], tower_b[0]) if isinstance(s, EmbeddingStem))
    ea, eb = stem_a.embedding.weight, stem_b.embedding.weight
    mean = (ea + eb) / 2
    expected = 0.5 * ((ea - mean).square().sum() + (eb - mean).square().sum())
    torch.testing.assert_close(model.regularizer(), expected)
    model.regularizer().backward()
    assert ea.grad is not None and ea.grad.abs().sum() > 0


@pytest.mark.parametrize("arch", sorted(BUILDERS))
def test_builders_name_a_bad_stem(arch):
    with pytest.raises(ValueError, match=r"stem\.image"):
        BUILDERS[arch](100, OUTPUTS, {"type": "lenet"})
    with pytest.raises(ValueError, match=r"stem\.dim"):
        BUILDERS[arch](5, OUTPUTS, {"type": "embedding", "n_ids": 3, "dim": -1})


def test_builders_without_stem_are_unchanged():
    model = b.shared_bottom(4, {"a": 1}, hidden=[3])
    assert not _stems_of(model)
    assert sorted(model.state_dict()) == ["encoder.0.bias", "encoder.0.weight",
                                          "heads.0.0.bias", "heads.0.0.weight"]


# ------------------------------------------------------------------ configuration


@pytest.mark.parametrize("arch", ["shared_bottom", "mmoe", "ple", "cross_stitch"])
@pytest.mark.parametrize("stem", [{"type": "lenet"}, EMBED], ids=["lenet", "embedding"])
def test_config_accepts_a_stem(arch, stem):
    spec = parse_deep({"architecture": arch, "arch_params": {"stem": stem}}, "models[0]", "x")
    assert spec.arch_params["stem"] == stem


@pytest.mark.parametrize(("stem", "path"), [
    ({"type": "lenet", "channels": [10]}, "models[2].arch_params.stem.channels"),
    ({"type": "lenet", "image": [28, 0]}, r"models[2].arch_params.stem.image[1]"),
    ({"type": "embedding", "n_ids": 10}, "models[2].arch_params.stem.dim"),
    ({"type": "rnn"}, "models[2].arch_params.stem.type"),
    ("lenet", "models[2].arch_params.stem"),
])
def test_config_errors_give_the_stem_key_path(stem, path):
    with pytest.raises(ConfigError) as info:
        parse_deep({"architecture": "mmoe", "arch_params": {"stem": stem}}, "models[2]", "x")
    assert str(info.value).startswith(f"{path}: ")
