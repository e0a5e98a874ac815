"""Instructions per iteration of the 'mix' loop, by mode, counted by valgrind (callgrind).

    python benchmarks/instructions.py [--modes dir,record,record-py] [--calls 2000,6000]

Wall time on a shared virtual machine varies by ±30% from run to run, more than the effects
being measured; an instruction count does not, so it shows what a change to the recorder saves.
It misses what instructions do not show (cache misses, page faults, the system calls
themselves), so the wall-time ratios of benchmarks/run.py stay the figures that count.

Each mode runs the bench_calls guest's mix loop (see run.py) at two iteration counts in a fresh
process under callgrind; the difference divided by the difference in iterations is the cost of
one iteration, free of start-up and compilation. The guest's thread is counted apart from the
others (the native recorder's worker), which run beside it on another core. Needs valgrind
(Debian: `apt install valgrind`).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run_once(mode: str, calls: int, workdir: Path) -> None:
    """One mix run in this process, by run.py's runner for the mode: what callgrind counts."""
    from benchmarks.run import _ours, _record
    from tests.guestbuild import build
    from tracer.backends.hostdir import HostDirBackend
    from tracer.sandbox import Mount

    module_path = build("bench_calls")
    traces = workdir.parent / "traces"
    runners = {
        "dir": lambda: _ours(module_path, lambda: Mount("/data", HostDirBackend(workdir))),
        "record": lambda: _record(module_path, workdir, traces),
        "record-py": lambda: _record(module_path, workdir, traces, native=False),
    }
    runners[mode]()(["bench_calls", "mix", str(calls)])


def count(mode: str, calls: int) -> tuple[int, int]:
    """Instructions of (the guest's thread, all other threads) of one run."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp) / "data"
        workdir.mkdir()
        out = Path(tmp) / "callgrind.out"
        cmd = [
            "valgrind",
            "--tool=callgrind",
            "--separate-threads=yes",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--run-once",
            mode,
            str(calls),
            str(workdir),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        # one file a thread, out-01 the first: the one the guest runs on
        totals = {}
        for part in Path(tmp).glob("callgrind.out-*"):
            found = re.search(r"^summary: (\d+)", part.read_text(), re.MULTILINE)
            if found:
                totals[part.name] = int(found.group(1))
        if done.returncode != 0 or "callgrind.out-01" not in totals:
            raise SystemExit(f"callgrind run of {mode} failed:\n{done.stderr[-2000:]}")
        guest = totals.pop("callgrind.out-01")
        return guest, sum(totals.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="dir,record,record-py")
    parser.add_argument("--calls", default="2000,6000", help="two iteration counts")
    parser.add_argument("--run-once", nargs=3, metavar=("MODE", "CALLS", "WORKDIR"))
    ns = parser.parse_args(argv)
    if ns.run_once:
        mode, calls, workdir = ns.run_once
        run_once(mode, int(calls), Path(workdir))
        return 0
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (Debian: apt install valgrind)")
    low, high = (int(n) for n in ns.calls.split(","))
    modes = [m for m in ns.modes.split(",") if m]
    jobs = [(mode, n) for mode in modes for n in (low, high)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = dict(zip(jobs, pool.map(lambda job: count(*job), jobs), strict=True))
    per = {
        mode: [(counts[mode, high][i] - counts[mode, low][i]) / (high - low) for i in (0, 1)]
        for mode in modes
    }
    base = modes[0]
    print(f"instructions per iteration of the mix loop (callgrind; ratio to {base})")
    print(f"  {'mode':<10} {'guest thread':>14} {'':>9} {'other threads':>14}")
    for mode in modes:
        guest, other = per[mode]
        ratio = guest / per[base][0]
        print(f"  {mode:<10} {guest:>14,.0f} ({ratio:.3f}x) {other:>14,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
