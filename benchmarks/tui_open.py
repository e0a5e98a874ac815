"""How fast the TUI opens a trace of a million calls, and how much memory it takes.

    python benchmarks/tui_open.py [--events N] [--trace PATH]

Writes a synthetic trace of N events (default 1,000,000) once, to a file in the temporary
directory that later runs reuse, in a child process so that writing it does not count towards
this process's memory. Then, at 80x24 in Textual's headless driver, it measures:

* open: from `open_trace` to the first screen drawn (the target is under a second);
* end: the jump to the last call, and a page down from the middle (the mean of ten), drawn;
* filter: a filter scanned over every event in its worker, until the table holds all matches;
* tree: the filesystem at the last call (rebuilt from the start, leaving checkpoints) and then
  at the middle one (from the nearest checkpoint);
* memory: the process's peak resident size before and after, and the Python heap allocated while
  opening (tracemalloc, in a second pass so that it does not slow the timed one).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tracer.backend import DescriptorFlags  # noqa: E402 -- after the path is set
from tracer.errors import ErrorCode  # noqa: E402
from tracer.operations import BY_NAME  # noqa: E402
from tracer.trace import (  # noqa: E402
    GuestInfo,
    Preopen,
    TraceError,
    TraceHeader,
    TraceWriter,
    open_trace,
)

SIZE = (80, 24)
HEADER = TraceHeader(
    guest=GuestInfo("synthetic.wasm", 1, "00" * 32, "preview1", "synthetic.wasm"),
    argv=("synthetic.wasm",),
    env=(),
    preopens=(Preopen("/data", "memory", "memory"),),
    wasmtime_version="50.0.1",
    wasitrace_version="bench",
    recorded_at="2024-01-01T00:00:00+00:00",
)


def write_trace(path: Path, events: int) -> None:
    """Rounds of open, read, read, close over 500 files, with a failed stat now and then."""
    codes = {name: BY_NAME[name].code for name in ("open_at", "read", "close", "stat_at")}
    block = bytes(range(256)) * 16
    with TraceWriter(path, HEADER) as writer:
        writer.record(BY_NAME["preopens"].code, (), [(3, "/data")], None, 1000)
        n = 1
        i = 0
        while n < events:
            name = f"dir{i % 10}/file{i % 500}.txt"
            writer.record(codes["open_at"], (3, 0, name, 0, DescriptorFlags.READ), 4, None, 9000)
            writer.record(codes["read"], (4, 4096, 0), block, None, 3000)
            writer.record(codes["read"], (4, 4096, 4096), b"tail", None, 2000)
            writer.record(codes["close"], (4,), None, None, 1000)
            n += 4
            if i % 97 == 0 and n < events:
                args = (3, 0, f"missing{i}.txt")
                writer.record(codes["stat_at"], args, None, ErrorCode.NO_ENTRY, 4000)
                n += 1
            i += 1
        # Make the count exact whatever the rounding above did.
        while writer.events_recorded < events:
            writer.record(codes["close"], (9,), None, ErrorCode.BAD_DESCRIPTOR, 1000)


def ensure_trace(path: Path, events: int) -> None:
    if path.exists():
        try:
            with open_trace(path) as trace:
                if len(trace) == events and trace.footer is not None:
                    return
        except TraceError:
            pass  # not a good trace: write it again
    print(f"writing a trace of {events:,} events to {path} (once) ...", flush=True)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, __file__, "--write", str(path), "--events", str(events)], check=True
    )
    print(
        f"  written in {time.perf_counter() - started:.1f} s, {path.stat().st_size / 1e6:.1f} MB",
        flush=True,
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


async def timed(path: Path) -> dict[str, float]:
    from tui.app import WasitraceApp

    out: dict[str, float] = {}
    started = time.perf_counter()
    trace = open_trace(path)
    app = WasitraceApp.for_trace(trace)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        out["open to first screen"] = time.perf_counter() - started

        # Keys are sent as the actions they are bound to, each followed by a redraw: the pilot's
        # own key handling waits for idle several times a key, which would be measured too.
        calls = app.call_list
        started = time.perf_counter()
        calls.action_last()
        await pilot.pause()
        out["jump to the last call"] = time.perf_counter() - started
        assert app.selected is not None and app.selected.seq == len(trace) - 1

        calls.go_to_seq(len(trace) // 2)
        await pilot.pause()
        started = time.perf_counter()
        for _ in range(10):
            calls.action_page(1)
            await pilot.pause()
        out["page down (each, drawn)"] = (time.perf_counter() - started) / 10

        started = time.perf_counter()
        app.set_filter("op=stat_at error")
        await app.workers.wait_for_complete()
        await pilot.pause()
        out["filter over every call"] = time.perf_counter() - started
        assert app.filter is not None and app.filter.done(trace)
        app.set_filter("")
        await pilot.pause()

        started = time.perf_counter()
        await pilot.press("end", "4")
        await pilot.pause(0.1)
        await app.workers.wait_for_complete()
        await pilot.pause()
        out["tree at the last call"] = time.perf_counter() - started

        started = time.perf_counter()
        await pilot.press("1")
        app.call_list.go_to_seq(len(trace) // 2 + 1234)
        await pilot.press("4")
        await pilot.pause(0.1)
        await app.workers.wait_for_complete()
        await pilot.pause()
        out["tree at the middle, after"] = time.perf_counter() - started
    trace.close()
    return out


async def heap_while_opening(path: Path) -> float:
    from tui.app import WasitraceApp

    tracemalloc.start()
    trace = open_trace(path)
    app = WasitraceApp.for_trace(trace)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("end")
        await pilot.pause()
        _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    trace.close()
    return peak / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--trace", type=Path, default=None)
    parser.add_argument("--write", type=Path, help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.write is not None:
        write_trace(ns.write, ns.events)
        return
    path = ns.trace or Path(tempfile.gettempdir()) / f"wasitrace-tui-bench-{ns.events}.wtrace"
    ensure_trace(path, ns.events)

    import tui.app  # noqa: F401 -- imported before measuring: a start-up cost, not opening's

    rss_before = peak_rss_mb()
    figures = asyncio.run(timed(path))
    rss_after = peak_rss_mb()
    heap = asyncio.run(heap_while_opening(path))

    print(f"TUI over a trace of {ns.events:,} events ({path.stat().st_size / 1e6:.1f} MB), 80x24")
    for what, seconds in figures.items():
        print(f"  {what:<28} {seconds:7.3f} s")
    print(f"  {'peak RSS before opening':<28} {rss_before:7.1f} MB")
    print(f"  {'peak RSS after all of it':<28} {rss_after:7.1f} MB")
    print(f"  {'Python heap while opening':<28} {heap:7.1f} MB (tracemalloc peak)")
    target = figures["open to first screen"]
    print(f"  first screen within 1 s: {'yes' if target < 1.0 else 'NO'} ({target:.3f} s)")


if __name__ == "__main__":
    main()
