"""wasitrace benchmarks: per-call cost and wall time, every mode measured in one run.

    python benchmarks/run.py [--calls N] [--repeat R]      (or: make bench)

The guest `tests/guests/bench_calls.c` makes N host calls of one kind; a call costs
(t(N) - t(0)) / N, so start-up and compilation cancel out. Each mode runs the same module:

    wasmtime    wasmtime's built-in WASI over a host directory (the reference). Its
                filesystem calls run on a thread pool (wasmtime-wasi's blocking tasks): under
                strace, a stat is one statx and about eight futex calls, so each costs a
                thread hand-off, tens of microseconds on a VM where waking a thread is slow.
                Calls without I/O (seek) cost it well under a microsecond. So its ratios say
                as much about this machine's thread wake-ups as about either host.
    mem         wasitrace, the guest's /data in memory
    dir         wasitrace, the guest's /data a host directory
    mem-plain   like mem, with host functions defined through wasmtime's public API
    record      wasitrace recording a trace over a host directory
    record-py   the same, recording through the pure-Python path instead of tracer._record
    replay      wasitrace replaying that trace (needs record to run first)

Times are the best of R repeats, in microseconds a call; the modes take turns within each
repeat; ratios are against the first mode given with --modes (default: wasmtime).

Then, with both dir and record chosen, record against run over the same directory is measured
apart, the figure issue 3 sets a target for: --pairs rounds of four 'mix' runs of
--pair-calls iterations in the order dir, record, record, dir, each round giving the ratio of
the two sums. This machine's speed drifts by tens of percent from one second to the next; a
round of under a second sees the same drift in both modes, so the median of the rounds is
steadier than a ratio of two bests. The runs include record's fixed costs (hashing the guest
for the header, creating the file, starting the worker): a millisecond or two a run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import wasmtime

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from replay.backend import replay_backend  # noqa: E402
from tests.guestbuild import build  # noqa: E402 -- the guest builder lives with the guests
from tracer.backends.hostdir import HostDirBackend  # noqa: E402
from tracer.backends.memory import MemoryBackend  # noqa: E402
from tracer.runner import RunOptions, make_engine, run_module  # noqa: E402
from tracer.sandbox import Mount, Sandbox  # noqa: E402
from tracer.system import HostSystem  # noqa: E402
from tracer.trace import TraceHeader, TraceWriter, open_trace  # noqa: E402
from tracer.tracing import tracing_backend  # noqa: E402

OPS = ("seek", "stat", "write1", "read4k", "mix")
Runner = Callable[[list[str]], float]


def _builtin(module_path: Path, workdir: Path) -> Runner:
    engine = wasmtime.Engine()
    module = wasmtime.Module.from_file(engine, str(module_path))

    def run(argv: list[str]) -> float:
        store = wasmtime.Store(engine)
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        config = wasmtime.WasiConfig()
        config.argv = argv
        config.preopen_dir(str(workdir), "/data")
        config.inherit_stderr()
        store.set_wasi(config)
        start = time.perf_counter()
        instance = linker.instantiate(store, module)
        entry = instance.exports(store)["_start"]
        assert isinstance(entry, wasmtime.Func)
        try:
            entry(store)
        except wasmtime.ExitTrap as exc:
            if exc.code != 0:
                raise RuntimeError(f"guest failed with status {exc.code}") from None
        return time.perf_counter() - start

    return run


def _ours(module_path: Path, mount: Callable[[], Mount], plain: bool = False) -> Runner:
    engine = make_engine()
    module = wasmtime.Module.from_file(engine, str(module_path))

    def run(argv: list[str]) -> float:
        backend = Sandbox(HostSystem(argv, []), [mount()])
        start = time.perf_counter()
        outcome = run_module(engine, module, backend, RunOptions(plain_calls=plain))
        elapsed = time.perf_counter() - start
        if outcome.exit_status != 0:
            raise RuntimeError(f"guest ended badly: {outcome}")
        return elapsed

    return run


def _record(module_path: Path, workdir: Path, traces: Path, native: bool | None = None) -> Runner:
    """Record over a host directory; each run's trace is kept for the replay mode."""
    engine = make_engine()
    module = wasmtime.Module.from_file(engine, str(module_path))

    def run(argv: list[str]) -> float:
        path = traces / f"{argv[1]}-{argv[2]}.wtrace"
        sandbox = Sandbox(HostSystem(argv, []), [Mount("/data", HostDirBackend(workdir))])
        start = time.perf_counter()
        writer = TraceWriter(
            path, TraceHeader.for_guest(module_path, "preview1", argv), native=native
        )
        outcome = run_module(engine, module, tracing_backend(sandbox, writer))
        writer.close(outcome.exit_status, outcome.trap)
        elapsed = time.perf_counter() - start
        if outcome.exit_status != 0:
            raise RuntimeError(f"guest ended badly: {outcome}")
        return elapsed

    return run


def _replay(module_path: Path, traces: Path) -> Runner:
    engine = make_engine()
    module = wasmtime.Module.from_file(engine, str(module_path))

    def run(argv: list[str]) -> float:
        start = time.perf_counter()
        with open_trace(traces / f"{argv[1]}-{argv[2]}.wtrace") as trace:
            backend, replayer = replay_backend(trace)
            outcome = run_module(engine, module, backend)
            replayer.finish(outcome.exit_status, outcome.trap)
        return time.perf_counter() - start

    return run


def _measure(
    runners: dict[str, Runner], argv0: str, op: str, calls: int, repeat: int
) -> dict[str, tuple[float, float]]:
    """Per mode: (microseconds a call, wall seconds of the N-call run), best of `repeat`.

    The modes take turns within each repeat, so a machine that gets busier or quieter during
    the run shifts them all alike and the ratios stay fair.
    """
    base: dict[str, float] = {}
    full: dict[str, float] = {}
    for _ in range(repeat):
        for mode, run in runners.items():
            base[mode] = min(base.get(mode, float("inf")), run([argv0, op, "0"]))
            full[mode] = min(full.get(mode, float("inf")), run([argv0, op, str(calls)]))
    return {mode: ((full[mode] - base[mode]) / calls * 1e6, full[mode]) for mode in runners}


def _paired(
    first: Runner, second: Runner, argv: list[str], rounds: int
) -> tuple[list[float], float]:
    """Wall-time ratios second/first, one a round of first, second, second, first, sorted; and
    the ratio of all of second's time to all of first's."""
    ratios = []
    totals = [0.0, 0.0]
    for _ in range(rounds):
        a = first(argv)
        b = second(argv) + second(argv)
        a += first(argv)
        ratios.append(b / a)
        totals[0] += a
        totals[1] += b
    return sorted(ratios), totals[1] / totals[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ops", default=",".join(OPS), help="which of: " + ", ".join(OPS))
    parser.add_argument("--modes", default="wasmtime,mem,dir,record,replay,record-py,mem-plain")
    parser.add_argument("--pairs", type=int, default=40, help="rounds of record against dir")
    parser.add_argument("--pair-calls", type=int, default=5000, help="iterations a round's run")
    ns = parser.parse_args(argv)

    module_path = build("bench_calls")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp) / "data"
        traces = Path(tmp) / "traces"
        workdir.mkdir()
        modes: dict[str, Runner] = {
            "wasmtime": _builtin(module_path, workdir),
            "mem": _ours(module_path, lambda: Mount("/data", MemoryBackend())),
            "dir": _ours(module_path, lambda: Mount("/data", HostDirBackend(workdir))),
            "mem-plain": _ours(module_path, lambda: Mount("/data", MemoryBackend()), plain=True),
            "record": _record(module_path, workdir, traces),
            "record-py": _record(module_path, workdir, traces / "py", native=False),
            "replay": _replay(module_path, traces),
        }
        chosen = [m for m in ns.modes.split(",") if m]
        if "replay" in chosen and "record" in chosen:
            # replay reads what record wrote in the same turn
            chosen.remove("replay")
            chosen.insert(chosen.index("record") + 1, "replay")
        runners = {mode: modes[mode] for mode in chosen}
        ops = [op for op in ns.ops.split(",") if op]
        unknown = sorted(set(ops) - set(OPS))
        if unknown:
            parser.error(f"unknown --ops {', '.join(unknown)}; choose from {', '.join(OPS)}")
        by_op = {op: _measure(runners, module_path.name, op, ns.calls, ns.repeat) for op in ops}
        results = {mode: {op: by_op[op][mode] for op in ops} for mode in chosen}
        paired: list[float] = []
        overall = 0.0
        if {"dir", "record"} <= set(chosen) and "mix" in ops and ns.pairs > 0:
            mix = [module_path.name, "mix", str(ns.pair_calls)]
            paired, overall = _paired(runners["dir"], runners["record"], mix, ns.pairs)

    base = chosen[0]
    print(f"bench_calls, {ns.calls} calls an op, best of {ns.repeat}; us a call (ratio to {base})")
    print(f"{'op':<8}" + "".join(f"{m:>22}" for m in chosen))
    for op in ops:
        cells = []
        for mode in chosen:
            cost = results[mode][op][0]
            ratio = cost / results[base][op][0] if results[base][op][0] > 0 else float("nan")
            cells.append(f"{cost:>12.2f} ({ratio:>6.2f}x)")
        print(f"{op:<8}" + "".join(f"{c:>22}" for c in cells))
    if "mix" not in ops:
        return 0
    print("wall time of the 'mix' run (6 calls an iteration):")
    for mode in chosen:
        wall = results[mode]["mix"][1]
        print(f"  {mode:<10} {wall:8.3f} s  ({wall / results[base]['mix'][1]:.2f}x {base})")
    for mode in ("record", "record-py"):
        if mode in chosen and "dir" in chosen:
            ratio = results[mode]["mix"][1] / results["dir"]["mix"][1]
            print(f"{mode} against run over the same directory: {ratio:.2f}x the wall time")
    if paired:
        quartiles = statistics.quantiles(paired, n=4) if len(paired) > 1 else paired * 3
        print(
            f"record against run over the same directory, {len(paired)} rounds of "
            f"dir, record, record, dir ('mix', {ns.pair_calls} iterations): median "
            f"{statistics.median(paired):.3f}x the wall time "
            f"(quartiles {quartiles[0]:.3f}-{quartiles[2]:.3f}, best {paired[0]:.3f}; "
            f"all rounds together {overall:.3f}x)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
