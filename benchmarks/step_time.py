"""Time one training step of gradient-aggregation methods: polytask against its peers.

Model: a shared MLP 256→512→512→256 (ReLU after every layer), batch 256, ``T`` linear
heads 256→1 with a squared-error loss, Adam, ``--threads`` torch threads (2).  For each
``T`` and each method, the step (zero_grad, forward, per-task gradients + aggregation,
Adam) is timed for:

- ``plain``: the summed loss, one backward (the baseline of every ratio);
- ``polytask (parameter)`` and ``polytask (representation)``: :func:`mtl_backward`;
- ``torchjd autojac``: ``mtl_backward`` + ``jac_to_grad`` with the aggregator;
- ``torchjd autogram``: ``Engine(encoder).compute_gramian`` + weighting + one backward
  (for the methods torchjd ships as a Gramian weighting);
- ``LibMTL``: its weighting classes driven directly (its Trainer is CUDA-only):
  ``backward(losses)`` then the optimizer step; ``LibMTL (rep_grad)`` for MGDA.

Every variant starts from the same weights and sees the same batch.  The variants run
in round robin (one step each in turn): ``--warmup`` untimed rounds, then ``--steps``
timed rounds whose per-variant median is taken; the whole sweep is repeated
``--repeats`` times, reporting the median over repeats.  The table goes into
``docs/benchmarks.md`` between the ``<!-- step_time:start -->`` and
``<!-- step_time:end -->`` markers.

Usage::

    python benchmarks/step_time.py                    # full run, writes the table
    python benchmarks/step_time.py --quick --no-write # smoke test

Peers are optional: a peer that is not installed (or fails) is reported in the notes
with the reason, never with a number.  They are benchmark-only dependencies::

    pip install -c constraints.txt torchjd qpsolvers quadprog ecos
    pip install -c constraints.txt --no-deps libmtl
"""

from __future__ import annotations

import argparse
import copy
import importlib
import importlib.util
import os
import platform
import re
import statistics
import sys
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from polytask.deep import aggregation as agg
from polytask.deep.backward import mtl_backward

START, END = "<!-- step_time:start -->", "<!-- step_time:end -->"
METHODS = ("mgda", "pcgrad", "cagrad", "nash", "upgrad")
LABELS = {"mgda": "MGDA", "pcgrad": "PCGrad", "cagrad": "CAGrad", "nash": "Nash-MTL",
          "upgrad": "UPGrad"}
Step = Callable[[], None]


@dataclass
class Model:
    encoder: nn.Module
    heads: nn.ModuleList
    optimizer: torch.optim.Optimizer
    x: Tensor
    y: Tensor

    def shared(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    def forward(self) -> tuple[Tensor, list[Tensor]]:
        z = self.encoder(self.x)
        losses = [(h(z)[:, 0] - self.y[:, i]).pow(2).mean() for i, h in enumerate(self.heads)]
        return z, losses


@dataclass
class Row:
    tasks: int
    method: str
    variant: str
    times: list[float] = field(default_factory=list)
    note: str = ""


def build(template: Model) -> Model:
    encoder, heads = copy.deepcopy(template.encoder), copy.deepcopy(template.heads)
    params = [*encoder.parameters(), *heads.parameters()]
    return Model(encoder, heads, torch.optim.Adam(params, lr=1e-4), template.x, template.y)


def template_model(n_tasks: int, seed: int) -> Model:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for a, b in ((256, 512), (512, 512), (512, 256)):
        layers += [nn.Linear(a, b), nn.ReLU()]
    encoder = nn.Sequential(*layers)
    heads = nn.ModuleList(nn.Linear(256, 1) for _ in range(n_tasks))
    x = torch.randn(256, 256, generator=gen)
    y = torch.randn(256, n_tasks, generator=gen)
    return Model(encoder, heads, torch.optim.Adam([torch.zeros(1)]), x, y)


# ----------------------------------------------------------------------- variants
def plain_step(m: Model) -> Step:
    def step() -> None:
        m.optimizer.zero_grad()
        _, losses = m.forward()
        torch.stack(losses).sum().backward()
        m.optimizer.step()
    return step


def polytask_weighting(method: str, n_tasks: int) -> object:
    gen = torch.Generator().manual_seed(0)
    return {"mgda": lambda: agg.MGDAWeighting(), "pcgrad": lambda: agg.PCGradWeighting(gen),
            "cagrad": lambda: agg.CAGradWeighting(c=0.4), "nash": lambda: agg.NashMTLWeighting(),
            "upgrad": lambda: agg.UPGradWeighting()}[method]()


def polytask_step(m: Model, method: str, mode: str) -> Step:
    weighting = polytask_weighting(method, len(m.heads))
    shared, heads = m.shared(), list(m.heads.parameters())

    def step() -> None:
        m.optimizer.zero_grad()
        z, losses = m.forward()
        mtl_backward(torch.stack(losses), shared, heads, method=weighting, mode=mode,  # type: ignore[arg-type]
                     features=z)
        m.optimizer.step()
    return step


def torchjd_steps(m_factory: Callable[[], Model], method: str) -> dict[str, Step | str]:
    try:
        tjd_agg = importlib.import_module("torchjd.aggregation")
        autojac = importlib.import_module("torchjd.autojac")
        autogram = importlib.import_module("torchjd.autogram")
    except ImportError as err:
        return {"torchjd": f"torchjd not installed ({err})"}
    out: dict[str, Step | str] = {}
    n = None
    m = m_factory()
    n = len(m.heads)
    make = {"mgda": lambda: tjd_agg.MGDA(), "pcgrad": lambda: tjd_agg.PCGrad(),
            "cagrad": lambda: tjd_agg.CAGrad(c=0.4), "nash": lambda: tjd_agg.NashMTL(n_tasks=n),
            "upgrad": lambda: tjd_agg.UPGrad()}
    aggregator = make[method]()
    shared, per_task = m.shared(), [list(h.parameters()) for h in m.heads]

    def autojac_step() -> None:
        m.optimizer.zero_grad()
        z, losses = m.forward()
        autojac.mtl_backward(losses, z, tasks_params=per_task, shared_params=shared)
        autojac.jac_to_grad(shared, aggregator)
        m.optimizer.step()
    out["torchjd autojac"] = autojac_step
    weightings = {"mgda": "MGDAWeighting", "pcgrad": "PCGradWeighting",
                  "cagrad": "CAGradWeighting", "upgrad": "UPGradWeighting"}
    if method not in weightings:
        out["torchjd autogram"] = "torchjd ships Nash-MTL as an aggregator only"
        return out
    g = m_factory()
    kwargs = {"c": 0.4} if method == "cagrad" else {}
    weighting = getattr(tjd_agg, weightings[method])(**kwargs)
    engine = autogram.Engine(g.encoder, batch_dim=None)

    def autogram_step() -> None:
        g.optimizer.zero_grad()
        _, losses = g.forward()
        stacked = torch.stack(losses)
        weights = weighting(engine.compute_gramian(stacked))
        # torchjd convention: the heads get unit weights, the encoder Σ w_i ∇L_i
        stacked.backward(weights, inputs=g.shared(), retain_graph=True)
        stacked.sum().backward(inputs=list(g.heads.parameters()))
        g.optimizer.step()
    out["torchjd autogram"] = autogram_step
    return out


def _libmtl_weighting() -> types.ModuleType:
    """LibMTL's weighting package without its __init__ (which needs torchvision)."""
    if "LibMTL.weighting" in sys.modules:
        return sys.modules["LibMTL.weighting"]
    spec = importlib.util.find_spec("LibMTL")
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError("LibMTL is not installed")
    pkg = types.ModuleType("LibMTL")
    pkg.__path__ = list(spec.submodule_search_locations)
    sys.modules["LibMTL"] = pkg
    return importlib.import_module("LibMTL.weighting")


def libmtl_steps(m_factory: Callable[[], Model], method: str) -> dict[str, Step | str]:
    names = {"mgda": "MGDA", "pcgrad": "PCGrad", "cagrad": "CAGrad"}
    if method not in names:
        return {"LibMTL": f"LibMTL 1.1.5 has no {LABELS[method]}"}
    try:
        weighting = _libmtl_weighting()
    except ImportError as err:
        return {"LibMTL": f"LibMTL not importable ({err})"}
    all_kwargs: dict[str, dict[str, Any]] = {"mgda": {"mgda_gn": "none"}, "pcgrad": {},
                                             "cagrad": {"calpha": 0.4, "rescale": 1}}
    kwargs = all_kwargs[method]
    out: dict[str, Step | str] = {}
    for rep in (False, True):
        if rep and method != "mgda":
            continue
        m = m_factory()
        cls = getattr(weighting, names[method])

        class Driver(cls):  # type: ignore[misc, valid-type]
            def __init__(self, model: Model, rep_grad: bool) -> None:
                super().__init__()
                self.model, self.task_num, self.rep_grad = model, len(model.heads), rep_grad
                self.device = torch.device("cpu")

            def get_share_params(self) -> Any:
                return self.model.encoder.parameters()

            def zero_grad_share_params(self) -> None:
                self.model.encoder.zero_grad(set_to_none=False)

        driver = Driver(m, rep)

        def step(m: Model = m, driver: Any = driver, rep: bool = rep) -> None:
            m.optimizer.zero_grad(set_to_none=False)
            if rep:  # LibMTL's rep_grad: one detached copy of z per task
                z = m.encoder(m.x)
                driver.rep = z
                driver.rep_tasks = {}
                losses = []
                for i, h in enumerate(m.heads):
                    zi = z.detach().clone().requires_grad_(True)
                    driver.rep_tasks[i] = zi
                    losses.append((h(zi)[:, 0] - m.y[:, i]).pow(2).mean())
                driver.task_name = list(range(len(m.heads)))
            else:
                _, losses = m.forward()
            driver.backward(losses, **kwargs)
            m.optimizer.step()
        out["LibMTL (rep_grad)" if rep else "LibMTL"] = step
    return out


# ----------------------------------------------------------------------- timing
def run(args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    for n_tasks in args.tasks:
        template = template_model(n_tasks, args.seed)

        def factory(template: Model = template) -> Model:
            return build(template)

        variants: dict[tuple[str, str], Step | str] = {("plain", "plain (summed loss)"):
                                                       plain_step(factory())}
        for method in args.methods:
            for mode in ("parameter", "representation"):
                variants[(method, f"polytask ({mode})")] = polytask_step(factory(), method, mode)
            for name, s in {**torchjd_steps(factory, method),
                            **libmtl_steps(factory, method)}.items():
                variants[(method, name)] = s
        table = {key: Row(n_tasks, *key) for key in variants}
        for key, s in variants.items():
            if isinstance(s, str):
                table[key].note = s
        clock = time.perf_counter if args.clock == "wall" else time.process_time
        for _ in range(args.repeats):
            # round robin: every variant runs one step in turn, so that bursts of load
            # from other jobs hit all variants alike
            samples: dict[tuple[str, str], list[float]] = {}
            for round_ in range(args.warmup + args.steps):
                for key, s in variants.items():
                    if isinstance(s, str) or table[key].note:
                        continue
                    try:
                        start = clock()
                        s()
                        elapsed = clock() - start
                    except Exception as err:  # a failing peer must not stop the benchmark
                        table[key].note = f"failed: {type(err).__name__}: {str(err)[:90]}"
                        table[key].times.clear()
                        continue
                    if round_ >= args.warmup:
                        samples.setdefault(key, []).append(elapsed)
            for key, values in samples.items():
                if not table[key].note:
                    table[key].times.append(statistics.median(values))
            print(f"T={n_tasks}: repeat done", file=sys.stderr)
        rows.extend(table.values())
    return rows


def ms(row: Row) -> float | None:
    return statistics.median(row.times) * 1e3 if row.times and not row.note else None


def _best(group: list[Row], rep: bool) -> float | None:
    """Fastest peer time in ``group``: parameter-level peers, or LibMTL's rep_grad."""
    times = [ms(r) for r in group
             if not r.variant.startswith("polytask") and ("rep_grad" in r.variant) == rep]
    return min((t for t in times if t is not None), default=None)


def render(rows: list[Row], args: argparse.Namespace, command: str) -> str:
    what = ("wall-clock time" if args.clock == "wall"
            else "CPU time of the process (less sensitive to other jobs than wall-clock time)")
    key = run_key(args)
    lines = [f"<!-- step_time:run {key}:start -->", "",
             f"### {args.threads} thread(s), {what}", "",
             f"Command: `{command}`", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPU(s), torch "
             f"{torch.__version__}, load average before the run "
             f"{args.load:.1f}; variants interleaved step by step, {args.warmup} warm-up + "
             f"{args.steps} timed steps each, median, repeated {args.repeats}× (median of "
             "the repeats).", ""]
    notes: list[str] = []
    goals: list[str] = []
    for n_tasks in args.tasks:
        sub = [r for r in rows if r.tasks == n_tasks]
        base = next((ms(r) for r in sub if r.method == "plain"), None)
        if base is None:
            raise RuntimeError(f"the plain step failed for T={n_tasks}")
        lines += [f"#### T = {n_tasks}", "", "| method | variant | ms / step | ratio | vs peer |",
                  "|---|---|---:|---:|---:|"]
        lines.append(f"| — | plain (summed loss) | {base:.1f} | 1.00 | |")
        for method in args.methods:
            group = [r for r in sub if r.method == method]
            for r in group:
                t = ms(r)
                if t is None:
                    lines.append(f"| {LABELS[method]} | {r.variant} | n/a | | |")
                    notes.append(f"T={n_tasks}, {LABELS[method]}, {r.variant}: {r.note}")
                    continue
                vs = ""
                if r.variant.startswith("polytask"):
                    rep = "representation" in r.variant
                    best = _best(group, rep)
                    if best:
                        vs = f"{t / best:.2f}"
                        if not rep and n_tasks >= 8:
                            ok = "met" if t / best <= 0.7 else "NOT met"
                            goals.append(f"T={n_tasks}, {LABELS[method]}: parameter mode at "
                                         f"{t / best:.2f}× the fastest peer (goal ≤ 0.70: {ok})")
                    if rep and n_tasks == 16:
                        ok = "met" if t / base <= 1.5 else "NOT met"
                        goals.append(f"T=16, {LABELS[method]}: representation mode at "
                                     f"{t / base:.2f}× a plain step (goal ≤ 1.50: {ok})")
                lines.append(f"| {LABELS[method]} | {r.variant} | {t:.1f} | {t / base:.2f} "
                             f"| {vs} |")
        lines.append("")
    if goals:
        lines += ["Goals (from this run):", ""] + [f"- {g}" for g in goals] + [""]
    if notes:
        lines += ["Notes:", ""] + [f"- {n}" for n in sorted(set(notes))] + [""]
    lines.append(f"<!-- step_time:run {key}:end -->")
    return "\n".join(lines) + "\n"


HEADER = """## Step time of the per-task-gradient engine

Model: shared MLP 256→512→512→256 (ReLU), batch 256, T linear heads (MSE), Adam; every
variant starts from the same weights and sees the same batch, and all variants run in
the same process, interleaved step by step. *ratio* = step time / plain summed-loss
step time (the plain step includes the Adam step). *vs peer* = polytask time / the
fastest peer's time for the same method: the parameter-level peers (torchjd autojac,
torchjd autogram, LibMTL) for `polytask (parameter)`, LibMTL's `rep_grad` for
`polytask (representation)` (the only peer with a representation-level mode).
polytask is called with `features=z` in both modes (see `polytask.deep.backward`).

The machine is shared (2 cores, other jobs running during these measurements), so
the numbers move by 10–20 % from run to run, the wall-clock ones with two threads most;
the CPU-time run with one thread is the more reproducible comparison.  Each run lists
which goals it met: parameter mode at most 0.7× the fastest peer for T ≥ 8, and
representation mode at most 1.5× a plain step for T = 16.

What makes polytask's parameter mode faster than its peers: the per-task cotangents at
the representation are recorded in one pass through the heads; the encoder then runs one
batched vector-Jacobian product that only returns the gradients with respect to each
linear layer's *output* (autograd computes no weight gradient); the Gramian of a linear
layer is formed from its input `a` and those output gradients `δ` as
`⟨δ_i, (a aᵀ + 1) δ_j⟩` when the batch is smaller than the layer's input (cheaper than
any weight gradient), and from the per-task blocks `[a, 1]ᵀ δ_i` otherwise; and
`d = Jᵀ w` comes from the same pieces, so there is no second backward pass.  The small
`(T, T)` problems cost little next to that: UPGrad's T projections onto the dual cone are
solved together, by a primal-dual active-set method with one batched `(T, T, T)` linear
solve per iteration (usually two or three), certified by their optimality conditions.
The FLOP floor is still about one backward pass per task through the encoder, so the
gain over the fastest peer is bounded (about 0.6–0.7× here).
"""


def run_key(args: argparse.Namespace) -> str:
    return f"{args.clock}-{args.threads}t"


def write(path: Path, block: str, key: str) -> None:
    """Put ``block`` (one run) inside this benchmark's section, keeping other runs."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    blocks: dict[str, str] = {}
    before, after = text.rstrip("\n") + "\n\n", ""
    if START in text and END in text:
        before, rest = text.split(START, 1)
        body, after = rest.split(END, 1)
        pattern = r"<!-- step_time:run (\S+):start -->.*?<!-- step_time:run \1:end -->"
        for match in re.finditer(pattern, body, flags=re.S):
            blocks[match.group(1)] = match.group(0) + "\n"
    blocks[key] = block
    section = "\n".join([START, HEADER, *[blocks[k] for k in sorted(blocks)], END])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(before + section + after)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[2, 8, 16])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall-clock time, or CPU time of the process (use --threads 1)")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--quick", action="store_true", help="T=2 and 4, 2 steps, 1 repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.tasks, args.steps, args.warmup, args.repeats = [2, 4], 2, 1, 1
    if args.clock == "cpu" and args.threads != 1:
        parser.error("--clock cpu measures the CPU time of all threads: use --threads 1")
    torch.set_num_threads(args.threads)
    args.load = os.getloadavg()[0]
    command = "python benchmarks/step_time.py " + " ".join(sys.argv[1:] if argv is None else argv)
    rows = run(args)
    block = render(rows, args, command.strip())
    print(block)
    if not args.no_write:
        write(args.output, block, run_key(args))


if __name__ == "__main__":
    main()
