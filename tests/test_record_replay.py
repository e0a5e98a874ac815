"""Recording and replaying guests: same output, traces that hold every call, divergence reports."""

from __future__ import annotations

import builtins
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from replay.backend import Divergence, replay_backend
from tracer.backends.memory import MemoryBackend
from tracer.runner import make_engine, run_module
from tracer.sandbox import Mount, Sandbox
from tracer.system import HostSystem
from tracer.trace import TraceHeader, TraceWriter, open_trace
from tracer.tracing import tracing_backend

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "examples" / "catalog.wasm"
CATALOG_C = ROOT / "examples" / "guest" / "catalog.c"
DATA = ROOT / "examples" / "data"

SLEEPER = """
(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 300) "slept\\n")
  (func (export "_start")
    ;; one relative monotonic clock subscription of 400 ms at 0, event at 100, count at 200
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 400000000))
    (drop (call $poll (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 200)))
    (i32.store (i32.const 0) (i32.const 300))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"""

# Appends to a file forever: for killing a recording half-way.
FOREVER = """
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "log")
  (data (i32.const 200) "tick\\n")
  (func (export "_start")
    (drop (call $open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 3) (i32.const 1)
                      (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 50)))
    (i32.store (i32.const 0) (i32.const 200))
    (i32.store (i32.const 4) (i32.const 5))
    (loop
      (drop (call $fd_write (i32.load (i32.const 50)) (i32.const 0) (i32.const 1) (i32.const 8)))
      (br 0))))
"""


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "tracer.cli", *args],
        capture_output=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def _wat(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.wasm"
    path.write_bytes(wasmtime.wat2wasm(text))
    return path


def _zig_build(source: str, out: Path) -> Path:
    src = out.with_suffix(".c")
    src.write_text(source)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ziglang",
            "cc",
            "-target",
            "wasm32-wasi",
            "-O2",
            "-s",
            str(src),
            "-o",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return out


@pytest.mark.usefixtures("recorder")  # the C recorder and the Python one
def test_record_behaves_like_run_and_replay_reproduces_it_without_the_directory(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    guest = tmp_path / "catalog.wasm"
    shutil.copy(CATALOG, guest)
    run_copy = tmp_path / "run-data"
    shutil.copytree(DATA, run_copy)
    ran = _cli("run", "--dir", f"{run_copy}::/data", str(guest))
    recorded = _cli(
        "record", "-o", str(tmp_path / "t.wtrace"), "--dir", f"{data}::/data", str(guest)
    )
    assert (recorded.stdout, recorded.stderr, recorded.returncode) == (
        ran.stdout,
        ran.stderr,
        ran.returncode,
    )
    assert b"3 files, 47 words" in ran.stdout

    shutil.rmtree(data)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    replayed = _cli("replay", str(tmp_path / "t.wtrace"), cwd=elsewhere)
    assert (replayed.stdout, replayed.stderr, replayed.returncode) == (
        ran.stdout,
        ran.stderr,
        ran.returncode,
    )


class _Log:
    """A backend proxy that notes each operation performed (for checking the trace)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def call(*args: Any) -> Any:
            self.calls.append((name, args))
            return method(*args)

        return call


def _record_catalog(path: Path) -> list[tuple[str, tuple[Any, ...]]]:
    sandbox = Sandbox(
        HostSystem(["catalog.wasm"], [], stdout_fd=os.open(os.devnull, os.O_WRONLY)),
        [Mount("/data", MemoryBackend.from_host_dir(DATA), kind="memory")],
    )
    log = _Log(sandbox)
    writer = TraceWriter(path, TraceHeader.for_guest(CATALOG, "preview1", ["catalog.wasm"]))
    engine = make_engine()
    outcome = run_module(
        engine, wasmtime.Module.from_file(engine, str(CATALOG)), tracing_backend(log, writer)
    )  # type: ignore[arg-type]
    writer.close(outcome.exit_status, outcome.trap)
    return log.calls


@pytest.mark.usefixtures("recorder")
def test_the_trace_holds_exactly_the_backend_operations_performed(tmp_path: Path) -> None:
    calls = _record_catalog(tmp_path / "t.wtrace")
    with open_trace(tmp_path / "t.wtrace") as trace:
        events = [(e.op.name, e.args) for e in trace]
        assert trace.footer is not None and trace.footer.exit_status == 0
    assert [name for name, _ in events] == [name for name, _ in calls]
    assert events == calls


def test_replay_touches_no_host_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _record_catalog(tmp_path / "t.wtrace")
    engine = make_engine()
    module = wasmtime.Module.from_file(engine, str(CATALOG))
    with open_trace(tmp_path / "t.wtrace") as trace:
        devnull = os.open(os.devnull, os.O_WRONLY)
        backend, replayer = replay_backend(trace, stdout_fd=devnull, stderr_fd=devnull)

        def forbidden(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError(f"replay touched the host filesystem: {args}")

        for name in ("open", "stat", "lstat", "scandir", "listdir", "mkdir", "unlink", "rename"):
            monkeypatch.setattr(os, name, forbidden)
        monkeypatch.setattr(builtins, "open", forbidden)
        outcome = run_module(engine, module, backend)
        monkeypatch.undo()
        replayer.finish(outcome.exit_status, outcome.trap)
    assert outcome.exit_status == 0


@pytest.mark.parametrize(
    ("change", "field", "seq_op"),
    [
        ("another file", "path", "open_at"),
        ("other bytes", "data", "write"),
        ("a skipped call", "operation", None),
    ],
)
def test_a_changed_guest_is_reported_at_the_right_event_and_field(
    tmp_path: Path, change: str, field: str, seq_op: str | None
) -> None:
    source = CATALOG_C.read_text()
    if change == "another file":
        changed = source.replace('"%s/catalog.txt"', '"%s/catalog.tmp"')
    elif change == "other bytes":
        changed = source.replace('"%d files, %ld words\\n"', '"%d files, %ld WORDS\\n"')
    else:
        # The guest no longer reads its summary back: the fopen of it disappears.
        changed = source.replace('FILE* check = fopen(out, "r");', "FILE* check = NULL;")
    assert changed != source
    guest = _zig_build(changed, tmp_path / "changed.wasm")
    trace_path = tmp_path / "t.wtrace"
    _record_catalog(trace_path)
    engine = make_engine()
    with open_trace(trace_path) as trace:
        devnull = os.open(os.devnull, os.O_WRONLY)
        backend, replayer = replay_backend(trace, stdout_fd=devnull, stderr_fd=devnull)
        with pytest.raises(Divergence) as caught:
            outcome = run_module(engine, wasmtime.Module.from_file(engine, str(guest)), backend)
            replayer.finish(outcome.exit_status, outcome.trap)
        divergence = caught.value
        expected = [e for e in trace]
    assert divergence.differing == [field]
    assert divergence.expected == expected[divergence.seq]
    if seq_op is not None:
        assert divergence.expected is not None and divergence.expected.op.name == seq_op
    # The calls before the divergence are the trace's own.
    assert divergence.recent == expected[max(0, divergence.seq - 5) : divergence.seq]
    report = divergence.render()
    assert f"event #{divergence.seq}" in report and ">>" in report


def test_the_cli_prints_the_report_and_exits_135(tmp_path: Path) -> None:
    _record_catalog(tmp_path / "t.wtrace")
    changed = CATALOG_C.read_text().replace('"%s/catalog.txt"', '"%s/catalog.tmp"')
    guest = _zig_build(changed, tmp_path / "changed.wasm")
    refused = _cli("replay", str(tmp_path / "t.wtrace"), "--guest", str(guest))
    assert refused.returncode == 126 and b"--allow-different-guest" in refused.stderr
    result = _cli(
        "replay", str(tmp_path / "t.wtrace"), "--guest", str(guest), "--allow-different-guest"
    )
    assert result.returncode == 135
    text = result.stderr.decode()
    assert "departed from the trace" in text and '"catalog.tmp"' in text and "Traceback" not in text


def test_replay_of_a_sleeping_guest_does_not_sleep(tmp_path: Path) -> None:
    guest = _wat(tmp_path, "sleeper", SLEEPER)
    engine = make_engine()
    module = wasmtime.Module.from_file(engine, str(guest))
    out = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT)
    writer = TraceWriter(tmp_path / "s.wtrace", TraceHeader.for_guest(guest, "preview1", ["s"]))
    start = time.perf_counter()
    run_module(
        engine, module, tracing_backend(Sandbox(HostSystem(["s"], [], stdout_fd=out), []), writer)
    )
    record_time = time.perf_counter() - start
    writer.close(0)
    with open_trace(tmp_path / "s.wtrace") as trace:
        assert [e.args for e in trace if e.op.name == "sleep"] == [(400_000_000,)]
        backend, _ = replay_backend(trace, stdout_fd=out)
        start = time.perf_counter()
        run_module(engine, module, backend)
        replay_time = time.perf_counter() - start
    assert (tmp_path / "out").read_bytes() == b"slept\nslept\n"
    assert record_time >= 0.4 > replay_time


@pytest.mark.usefixtures("recorder")
def test_a_recording_killed_with_sigkill_leaves_a_readable_trace(tmp_path: Path) -> None:
    guest = _wat(tmp_path, "forever", FOREVER)
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tracer.cli",
            "record",
            "-o",
            str(tmp_path / "k.wtrace"),
            "--mem",
            "/",
            str(guest),
        ],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    time.sleep(3.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    with open_trace(tmp_path / "k.wtrace") as trace:
        assert trace.ended_early
        assert trace.damage  # the sentence that says where it ends
        events = list(trace)
    assert len(events) > 256
    assert {e.op.name for e in events[10:]} == {"write"}


@pytest.mark.usefixtures("recorder")
def test_a_trace_that_cannot_be_written_stops_the_guest_with_one_sentence(tmp_path: Path) -> None:
    guest = _wat(tmp_path, "forever", FOREVER)
    path = tmp_path / "full.wtrace"

    def small_files() -> None:  # as a full disk would, a little later
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    done = subprocess.run(
        [sys.executable, "-m", "tracer.cli", "record", "-o", str(path), "--mem", "/", str(guest)],
        capture_output=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        preexec_fn=small_files,
        timeout=120,
    )
    message = done.stderr.decode()
    assert done.returncode == 126, message
    assert message.count("\n") == 1 and "Traceback" not in message
    assert f"Cannot write the trace {path}: File too large; the guest was stopped." in message
    with open_trace(path) as trace:
        assert trace.ended_early
        events = list(trace)
    assert len(events) > 256
    assert {e.op.name for e in events[10:]} == {"write"}
