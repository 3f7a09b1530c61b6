"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def torch_one_thread() -> Iterator[None]:
    """Run a module's tiny torch models on one intra-op thread, then restore the count.

    Small models are many times faster on one thread on a shared 2-core machine. torch
    is imported here, not at the top, so that modules which do not ask for this fixture
    (``polytask.linear`` must not import torch) never load it.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
