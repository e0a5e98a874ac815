"""The C recording path (tracer._record) writes exactly the bytes the Python path writes.

The Python path in tracer/tracing.py and tracer/trace/writer.py is the definition of what an
event encodes to; these tests hold the C path to it byte for byte, over every operation, errors,
chunk and bulk-data boundaries, interning tables being reset, and odd calls.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import gc
import itertools
import os
import random
import shutil
import sysconfig
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import NATIVE_BUILT
from tests.test_trace_format import FILE, HEADER, SAMPLE, T0, duration_ns
from tests.test_tracing_backend import Scripted, script
from tracer.backend import DescriptorStat, DescriptorType, DirectoryEntry
from tracer.errors import ErrorCode, WasiError
from tracer.operations import BY_NAME, OPERATIONS
from tracer.trace import TraceWriteError, TraceWriter, open_trace
from tracer.trace.format import CHUNK_BULK_BYTES, OP_SPECS, Kind, ValueSpec
from tracer.tracing import tracing_backend

needs_native = pytest.mark.skipif(not NATIVE_BUILT, reason="tracer._record is not built")


def test_the_c_part_is_built_where_a_compiler_is() -> None:
    # `optional=True` in setup.py lets an install without a compiler go on in pure Python; where
    # there is one, a failed build must not pass unnoticed as a slow recorder.
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        pytest.skip(f"no C compiler ({compiler}) on this machine")
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        pytest.skip("no Python headers on this machine")
    assert NATIVE_BUILT, "tracer._record did not build: see the output of pip install -e ."


def _traced(path: Path, native: bool, calls: list[tuple[Any, tuple[Any, ...], Any]]) -> bytes:
    writer = TraceWriter(path, HEADER, native=native)
    backend = tracing_backend(Scripted(calls).as_backend(), writer)
    for op, args, _ in calls:
        with contextlib.suppress(WasiError):
            getattr(backend, op.name)(*args)
    writer.close(0)
    return path.read_bytes()


def _without_durations(data: bytes, path: Path) -> list[Any]:
    """Everything in a trace but the measured durations (and so the chunks' offsets)."""
    path.write_bytes(data)
    with open_trace(path) as trace:
        footer = trace.footer
        assert footer is not None
        chunks = [entry._replace(offset=0) for entry in footer.index]
        return [(e.op, e.args, e.result, e.error) for e in trace] + [
            dataclasses.replace(footer, index=tuple(chunks))
        ]


def _busy_script(seed: int, n: int) -> list[tuple[Any, tuple[Any, ...], Any]]:
    """Many chunks: repeated and fresh bulk data past the chunk's bulk limit, stats that change,
    new and known paths, errors, listings."""
    rng = random.Random(seed)
    ops = {op.name: op for op in OPERATIONS}
    blocks = [rng.randbytes(rng.choice((32, 100, 4096, 70_000))) for _ in range(12)]
    calls: list[tuple[Any, tuple[Any, ...], Any]] = []
    for i in range(n):
        r = rng.random()
        if r < 0.3:
            calls.append((ops["read"], (5, 4096, i * 7), rng.choice(blocks)))
        elif r < 0.45:
            times = (T0 + i, None if i % 7 == 0 else T0 - 3 * i, T0 + 2 * i)
            kind = rng.choice([DescriptorType.REGULAR_FILE, DescriptorType.DIRECTORY])
            st = DescriptorStat(2049 + i % 2, 100 + i % 9, kind, 1 + i % 3, i, *times)
            calls.append((ops["stat"], (5,), st))
        elif r < 0.6:
            calls.append(
                (ops["stat_at"], (3, 1, f"dir/f{rng.randrange(40)}"), WasiError(ErrorCode.NO_ENTRY))
            )
        elif r < 0.7:
            calls.append((ops["write"], (6, rng.choice(blocks)[: rng.randrange(80)], i), 1))
        elif r < 0.8:
            entries = [DirectoryEntry(DescriptorType.DIRECTORY, f"e{j}", j) for j in range(i % 5)]
            calls.append((ops["read_directory"], (3,), entries))
        elif r < 0.9:
            calls.append((ops["clock_now"], (rng.choice(["realtime", "monotonic"]),), i << 40))
        else:
            calls.append((ops["set_times"], (6, rng.choice([None, "now", -i]), i), None))
    return calls


@needs_native
@pytest.mark.parametrize("calls", ["every-operation", "busy"])
def test_tracing_backend_writes_the_same_trace_natively(tmp_path: Path, calls: str) -> None:
    made = script() if calls == "every-operation" else _busy_script(7, 3000)
    native = _traced(tmp_path / "c.wtrace", True, made)
    python = _traced(tmp_path / "py.wtrace", False, made)
    assert _without_durations(native, tmp_path / "a") == _without_durations(python, tmp_path / "b")


class _Int(int):
    """An int that is not exactly an int: the C recorder copies a stat holding one."""


@needs_native
@pytest.mark.parametrize("thread", ["1", "0"])  # encoded by the worker, or as handed over
@pytest.mark.parametrize("calls", ["sample", "busy"])
def test_writer_record_gives_identical_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: str, thread: str
) -> None:
    # With the durations given, not measured, the files must be equal byte for byte.
    monkeypatch.setenv("WASITRACE_RECORD_THREAD", thread)
    big = random.Random(3).randbytes(CHUNK_BULK_BYTES + 5)
    if calls == "sample":
        top = (1 << 64) - 1  # deltas past 64 bits are stored wrapped
        wide = DescriptorStat(top, top - 1, DescriptorType.REGULAR_FILE, 1, 0, top, 0, None)
        made = SAMPLE * 40 + [("read", (5, len(big), 0), big)] * 3 + SAMPLE
        made += [("stat", (5,), wide), ("stat", (5,), FILE), ("stat", (5,), wide)]
        # negative and 3-digit fields (read by the worker), and an int subclass (copied instead)
        early = DescriptorStat(7, 8, DescriptorType.DIRECTORY, 2, 4096, -5, -(1 << 40), 1 << 62)
        odd = DescriptorStat(_Int(7), 8, DescriptorType.DIRECTORY, 2, _Int(4096), None, 1, 2)
        made += [("stat", (5,), early), ("stat", (5,), odd), ("stat", (5,), early)]
    else:
        made = [
            (op.name, args, outcome.code if isinstance(outcome, WasiError) else outcome)
            for op, args, outcome in _busy_script(11, 5000)
        ]
    files = []
    for native in (True, False):
        path = tmp_path / f"{native}.wtrace"
        with TraceWriter(path, HEADER, native=native) as writer:
            for i, (name, args, outcome) in enumerate(made):
                err = outcome if isinstance(outcome, ErrorCode) else None
                ok = None if err else outcome
                writer.record(BY_NAME[name].code, args, ok, err, duration_ns(i) * (i % 5000))
        files.append(path.read_bytes())
    assert files[0] == files[1]


@needs_native
def test_keyword_and_wrong_calls_behave_as_python_methods(tmp_path: Path) -> None:
    ops = {op.name: op for op in OPERATIONS}
    inner = Scripted([(ops["open_at"], (), 7)] * 2)
    with TraceWriter(tmp_path / "t.wtrace", HEADER, native=True) as writer:
        backend = tracing_backend(inner.as_backend(), writer)
        assert backend.open_at(3, 0, "a", open_flags=0, flags=1) == 7
        assert backend.open_at(fd=3, path_flags=0, path="b", open_flags=0, flags=1) == 7
        with pytest.raises(TypeError, match="unexpected keyword argument 'mode'"):
            backend.open_at(3, 0, "c", 0, 1, mode=5)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="missing 1 required positional argument: 'flags'"):
            backend.open_at(3, 0, "c", 0)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="multiple values for argument 'fd'"):
            backend.open_at(3, 0, "c", 0, 1, fd=4)  # type: ignore[misc]
        assert backend.open_at.__name__ == "open_at"
    with open_trace(tmp_path / "t.wtrace") as trace:
        assert [e.args for e in trace] == [(3, 0, "a", 0, 1), (3, 0, "b", 0, 1)]
    assert [name for name, _ in inner.log] == ["open_at", "open_at"]


@needs_native
def test_a_value_that_cannot_be_stored_fails_the_call_and_records_nothing(tmp_path: Path) -> None:
    ops = {op.name: op for op in OPERATIONS}
    inner = Scripted([(ops["clock_now"], (), 1.5), (ops["clock_now"], (), 2)])
    with TraceWriter(tmp_path / "t.wtrace", HEADER, native=True) as writer:
        backend = tracing_backend(inner.as_backend(), writer)
        with pytest.raises(TypeError, match="can not serialize"):
            backend.clock_now("monotonic")  # type: ignore[arg-type]
        assert backend.clock_now("monotonic") == 2  # type: ignore[arg-type]
    with open_trace(tmp_path / "t.wtrace") as trace:
        assert [e.result for e in trace] == [2]


# -- any values: hypothesis ------------------------------------------------------------------
# Every msgpack encoding boundary, so a C encoder off by one cannot pass unnoticed.
_EDGES = [0, 127, 128, 255, 256, 65535, 65536, (1 << 32) - 1, 1 << 32, (1 << 63) - 1, 1 << 63]
_EDGES += [(1 << 64) - 1, -1, -32, -33, -128, -129, -32768, -32769, -(1 << 31), -(1 << 31) - 1]
_EDGES += [-(1 << 63)]
_TEXT = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),  # msgpack wants UTF-8
    st.sampled_from([31, 32, 255, 256, 65535, 65536]).map(lambda n: "x" * n),
    st.sampled_from(["é" * 15 + "x", "é" * 16]),
)
_U64 = st.one_of(st.integers(0, (1 << 64) - 1), st.sampled_from([e for e in _EDGES if e >= 0]))
_INT = st.one_of(
    st.integers(-(1 << 63), (1 << 64) - 1), st.integers(-40, 300), st.sampled_from(_EDGES)
)
_TIME = st.one_of(st.none(), _U64, st.integers(0, 1 << 40))
_STAT = st.builds(
    DescriptorStat, _U64, _U64, st.sampled_from(DescriptorType), _U64, _U64, _TIME, _TIME, _TIME
)
_BY_KIND: dict[Kind, st.SearchStrategy[Any]] = {
    Kind.NONE: st.none(),
    Kind.INT: _INT,
    Kind.TIMESTAMP: st.one_of(st.none(), st.just("now"), _INT),
    Kind.STR: st.one_of(_TEXT, st.sampled_from(["a", "dir/b", "ü"])),
    Kind.BYTES: st.one_of(
        st.binary(max_size=40), st.sampled_from([31, 32, 255, 256, 65536]).map(bytes)
    ),
    Kind.STAT: st.one_of(_STAT, st.just(DescriptorStat(1, 2, DescriptorType.FIFO, 1, 0, 3, 3, 3))),
    Kind.ENTRIES: st.lists(
        st.builds(DirectoryEntry, st.sampled_from(DescriptorType), _TEXT, _U64), max_size=7
    ),
    Kind.STRINGS: st.lists(_TEXT, max_size=17),
    Kind.PAIRS: st.lists(st.tuples(st.one_of(_TEXT, st.integers(0, 99)), _TEXT), max_size=3),
}


def _value(spec: ValueSpec) -> st.SearchStrategy[Any]:
    return st.sampled_from(list(spec.enum)) if spec.enum is not None else _BY_KIND[spec.kind]


@st.composite
def _event(draw: st.DrawFn) -> tuple[int, tuple[Any, ...], Any, ErrorCode | None, int]:
    spec = draw(st.sampled_from(OP_SPECS))
    args = tuple(draw(_value(p)) for p in spec.params)
    if draw(st.booleans()) and draw(st.booleans()):
        return spec.code, args, None, draw(st.sampled_from(list(ErrorCode))), 1000
    return spec.code, args, draw(_value(spec.result)), None, draw(st.integers(0, 1 << 40))


@needs_native
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_event(), max_size=700))
def test_any_values_give_the_same_bytes_on_both_paths(
    events: list[tuple[int, tuple[Any, ...], Any, ErrorCode | None, int]],
) -> None:
    files = []
    with tempfile.TemporaryDirectory() as tmp:
        for native in (True, False):
            path = Path(tmp) / f"{native}.wtrace"
            with TraceWriter(path, HEADER, native=native) as writer:
                for code, args, ok, err, duration in events:
                    writer.record(code, args, ok, err, duration)
            files.append(path.read_bytes())
    assert files[0] == files[1]


@needs_native
@pytest.mark.parametrize("thread", ["1", "0"])
def test_a_failed_write_of_the_worker_is_raised_as_a_trace_write_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, thread: str
) -> None:
    monkeypatch.setenv("WASITRACE_RECORD_THREAD", thread)
    ops = {op.name: op for op in OPERATIONS}
    writer = TraceWriter(tmp_path / "t.wtrace", HEADER, native=True)
    full = os.open("/dev/full", os.O_WRONLY)
    try:
        os.dup2(full, writer._file.fileno())  # every chunk write now fails with ENOSPC
        with pytest.raises(TraceWriteError) as info:  # from a later record() call, or flush()
            for fd in range(300):
                writer.record(ops["close"].code, (fd,), None, None, 1)
            writer.flush()
        assert info.value.errno == errno.ENOSPC and info.value.filename == str(writer.path)
        with pytest.raises(TraceWriteError):  # and it stays failed
            writer.close(0)
    finally:
        os.close(full)


@needs_native
def test_a_writer_dropped_without_close_stops_its_worker(tmp_path: Path) -> None:
    ops = {op.name: op for op in OPERATIONS}
    writer = TraceWriter(tmp_path / "t.wtrace", HEADER, native=True)
    for fd in range(1000):
        writer.record(ops["close"].code, (fd,), None, None, 1)
    writer.flush()
    del writer
    gc.collect()
    with open_trace(tmp_path / "t.wtrace") as trace:
        assert trace.ended_early and len(trace) == 1000


@needs_native
def test_a_thread_still_recording_while_the_writer_closes_neither_hangs_nor_spoils_it(
    tmp_path: Path,
) -> None:
    class Inner:
        def close(self, fd: int) -> None:
            time.sleep(0)  # lets the closing thread in mid-call

    for op in OPERATIONS:
        if not hasattr(Inner, op.name):
            setattr(Inner, op.name, lambda self, *args: None)
    writer = TraceWriter(tmp_path / "t.wtrace", HEADER, native=True)
    backend = tracing_backend(Inner(), writer)  # type: ignore[arg-type]  # enough of a Backend
    stopped: list[BaseException] = []

    def guest() -> None:
        try:
            for fd in itertools.count():
                backend.close(fd)
        except ValueError as exc:  # the writer is closed
            stopped.append(exc)

    thread = threading.Thread(target=guest)
    thread.start()
    time.sleep(0.2)
    writer.close(0)
    thread.join(timeout=30)
    assert not thread.is_alive() and "closed" in str(stopped[0])
    with open_trace(tmp_path / "t.wtrace") as trace:
        assert trace.footer is not None and not trace.ended_early
        assert [e.args for e in trace] == [(fd,) for fd in range(len(trace))]
