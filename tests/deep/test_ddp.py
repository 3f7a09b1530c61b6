"""DDP: two CPU ranks (gloo) take exactly the steps of one process on the global batch."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from polytask.deep._distributed import DistContext, distributed_context, init_distributed

HERE = Path(__file__).parent
SRC = HERE.parent.parent / "src"


def _worker():
    spec = importlib.util.spec_from_file_location("_ddp_worker", HERE / "_ddp_worker.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _launch_two_ranks(out: Path) -> list[subprocess.Popen[bytes]]:
    """Two processes with torchrun's environment (env:// rendezvous on 127.0.0.1)."""
    port = str(_free_port())
    procs = []
    for rank in range(2):
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port,
               "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank),
               "LOCAL_WORLD_SIZE": "2", "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
        procs.append(subprocess.Popen([sys.executable, str(HERE / "_ddp_worker.py"), str(out)],
                                      env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT))
    return procs


def test_two_ranks_equal_one_process_on_the_global_batch(tmp_path):
    (tmp_path / "ddp").mkdir()
    ranks = _launch_two_ranks(tmp_path / "ddp")
    worker = _worker()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:  # the single-process references, while the ranks start up
        (tmp_path / "single").mkdir()
        worker.run(tmp_path / "single")
        (tmp_path / "half").mkdir()
        worker.run(tmp_path / "half", batch_size=12, configs=("ew",))
        init = worker.make_model().state_dict()
    finally:
        torch.set_num_threads(threads)
        outputs = []
        for proc in ranks:
            try:
                outputs.append(proc.communicate(timeout=180)[0].decode())
            finally:
                if proc.poll() is None:
                    proc.kill()
    assert all(p.returncode == 0 for p in ranks), "\n".join(outputs)
    for name in worker.CONFIGS:
        single = torch.load(tmp_path / "single" / f"{name}.pt", weights_only=True)
        ddp = torch.load(tmp_path / "ddp" / f"{name}.pt", weights_only=True)
        for key, value in single.items():
            torch.testing.assert_close(ddp[key], value, rtol=1e-5, atol=1e-6,
                                       msg=f"{name}: {key}")
        moved = max(float((single[k] - init[k]).abs().max()) for k in single)
        assert moved > 1e-3, name
    # what each rank sees alone (half the batch) is a different step: the test can fail
    half = torch.load(tmp_path / "half" / "ew.pt", weights_only=True)
    single = torch.load(tmp_path / "single" / "ew.pt", weights_only=True)
    assert max(float((half[k] - single[k]).abs().max()) for k in half) > 1e-3


def test_single_process_context():
    assert distributed_context() == DistContext(rank=0, world_size=1)
    ctx = DistContext()
    t = torch.arange(3.0)
    assert torch.equal(ctx.all_reduce_sum(t), t) and ctx.all_reduce_sum(t) is not t
    ctx.barrier()


def test_init_distributed_without_torchrun(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert init_distributed() == DistContext()
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not init_distributed().enabled
