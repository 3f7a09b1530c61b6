"""Task samplers, index streams, sharding and the per-task batch source."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from polytask.deep._batches import PerTaskSource
from polytask.deep._sampling import IndexStream, TaskSampler, shard, task_probabilities

SIZES = [400, 100, 25]

pytestmark = pytest.mark.usefixtures("torch_one_thread")



@pytest.mark.parametrize(
    ("strategy", "temperature", "expected"),
    [
        ("proportional", 2.0, np.array(SIZES) / sum(SIZES)),
        ("uniform", 2.0, np.full(3, 1 / 3)),
        ("round_robin", 2.0, np.full(3, 1 / 3)),
        # n^(1/2) = 20, 10, 5
        ("temperature", 2.0, np.array([20.0, 10.0, 5.0]) / 35.0),
        ("temperature", 1.0, np.array(SIZES) / sum(SIZES)),
    ],
)
def test_task_probabilities_closed_form(strategy, temperature, expected):
    p = task_probabilities(SIZES, strategy, temperature)
    np.testing.assert_allclose(p, expected, rtol=1e-12)


def test_temperature_tends_to_uniform():
    p = task_probabilities(SIZES, "temperature", temperature=1e6)
    np.testing.assert_allclose(p, np.full(3, 1 / 3), atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sizes": [3, 0]}, "sizes must be integers >= 1"),
        ({"sizes": [3, 1.5]}, "sizes must be integers >= 1"),
        ({"sizes": []}, "non-empty"),
        ({"sizes": [3, 4], "strategy": "random"}, "sampling must be one of"),
        ({"sizes": [3, 4], "strategy": "temperature", "temperature": 0.0}, "temperature"),
        ({"sizes": [3, 4], "strategy": "temperature", "temperature": math.inf}, "temperature"),
    ],
)
def test_task_probabilities_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        task_probabilities(**kwargs)


@pytest.mark.parametrize("strategy", ["proportional", "uniform", "temperature"])
def test_sampler_frequencies_match_distribution(strategy):
    sampler = TaskSampler(SIZES, strategy, temperature=2.0)
    n = 20000
    draws = sampler.sample(n, torch.Generator().manual_seed(1))
    freq = np.bincount(draws.numpy(), minlength=3) / n
    p = sampler.probabilities
    sd = np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(freq - p) < 5 * sd), (freq, p)


def test_round_robin_is_exact_cycle():
    sampler = TaskSampler(SIZES, "round_robin")
    gen = torch.Generator().manual_seed(0)
    first = sampler.sample(4, gen).tolist()
    second = sampler.sample(5, gen).tolist()
    assert first + second == [0, 1, 2, 0, 1, 2, 0, 1, 2]


@pytest.mark.parametrize("strategy", ["proportional", "round_robin"])
def test_sampler_state_round_trip(strategy):
    sampler = TaskSampler(SIZES, strategy)
    gen = torch.Generator().manual_seed(0)
    sampler.sample(7, gen)
    state, gen_state = sampler.state_dict(), gen.get_state()
    expected = sampler.sample(11, gen)
    other = TaskSampler(SIZES, strategy)
    other.load_state_dict(state)
    gen.set_state(gen_state)
    assert torch.equal(other.sample(11, gen), expected)


def test_index_stream_passes_are_permutations_and_resume():
    stream = IndexStream(7)
    gen = torch.Generator().manual_seed(0)
    drawn = stream.take(10, gen)  # one full pass and 3 of the next
    assert sorted(drawn[:7].tolist()) == list(range(7))
    state, gen_state = stream.state_dict(), gen.get_state()
    rest = stream.take(11, gen)
    assert sorted(torch.cat([drawn[7:], rest[:4]]).tolist()) == list(range(7))
    again = IndexStream(7)
    again.load_state_dict(state)
    gen.set_state(gen_state)
    assert torch.equal(again.take(11, gen), rest)


def test_index_stream_errors():
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        IndexStream(0)
    stream = IndexStream(3)
    with pytest.raises(ValueError, match="holds 5 indices but the data has 3"):
        stream.load_state_dict({"order": torch.arange(5), "cursor": torch.tensor(0)})


@pytest.mark.parametrize(("n", "world"), [(10, 2), (7, 2), (5, 3), (1, 2)])
def test_shard_partitions_the_global_batch(n, world):
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    parts = [shard(idx, r, world) for r in range(world)]
    assert torch.equal(torch.cat(parts), idx)
    sizes = [p.numel() for p in parts]
    assert max(sizes) - min(sizes) <= 1


def _per_task_source(strategy, mixing, batch_size=8, steps=3000):
    datasets = {
        name: TensorDataset(  # column 0: the task, column 1: the row
            torch.stack([torch.full((n,), float(t)), torch.arange(n, dtype=torch.float32)], 1),
            torch.full((n,), float(t)),
        )
        for t, (name, n) in enumerate(zip("abc", SIZES, strict=True))
    }
    sampler = TaskSampler([len(d) for d in datasets.values()], strategy, temperature=2.0)
    return PerTaskSource(datasets, sampler, batch_size=batch_size, steps_per_epoch=steps,
                         mixing=mixing)


@pytest.mark.parametrize("strategy", ["proportional", "uniform", "temperature", "round_robin"])
def test_per_task_batches_follow_the_sampler(strategy):
    source = _per_task_source(strategy, "batch", steps=1500)
    counts = np.zeros(3)
    for x, targets in source.epoch(torch.Generator().manual_seed(0)):
        (name,) = targets  # one task per batch, and its own rows
        t = "abc".index(name)
        counts[t] += 1
        assert torch.all(x[:, 0] == t) and torch.all(targets[name] == t)
    p = source.sampler.probabilities
    freq = counts / counts.sum()
    if strategy == "round_robin":
        assert counts.tolist() == [500, 500, 500]
    else:
        assert np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / counts.sum()))


def test_example_mixing_gives_block_missing_batches():
    source = _per_task_source("proportional", "example", batch_size=16, steps=400)
    per_task = np.zeros(3)
    for x, targets in source.epoch(torch.Generator().manual_seed(0)):
        assert set(targets) == set("abc")
        labelled = torch.stack([~torch.isnan(targets[n]) for n in "abc"])
        assert torch.equal(labelled.sum(0), torch.ones(x.shape[0], dtype=torch.long))
        for t, name in enumerate("abc"):
            rows = labelled[t]
            assert torch.all(x[rows, 0] == t) and torch.all(targets[name][rows] == t)
            per_task[t] += int(rows.sum())
    p = source.sampler.probabilities
    n = per_task.sum()
    assert np.all(np.abs(per_task / n - p) < 5 * np.sqrt(p * (1 - p) / n))


def test_per_task_source_state_resumes_exactly():
    source = _per_task_source("temperature", "batch", steps=5)
    gen = torch.Generator().manual_seed(0)
    list(source.epoch(gen))
    state, gen_state = source.state_dict(), gen.get_state()
    expected = [(x.clone(), dict(y)) for x, y in source.epoch(gen)]
    fresh = _per_task_source("temperature", "batch", steps=5)
    fresh.load_state_dict(state)
    gen.set_state(gen_state)
    for (x1, y1), (x2, y2) in zip(expected, fresh.epoch(gen), strict=True):
        assert torch.equal(x1, x2) and y1.keys() == y2.keys()
