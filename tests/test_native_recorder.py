"""The C recording path (tracer._record) writes exactly the bytes the Python path writes.

The Python path in tracer/tracing.py and tracer/trace/writer.py is the definition of what an
event encodes to; these tests hold the C path to it byte for byte, over every operation, errors,
chunk and bulk-data boundaries, interning tables being reset, and odd calls.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import shutil
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NATIVE_BUILT
from tests.test_trace_format import FILE, HEADER, SAMPLE, T0, duration_ns
from tests.test_tracing_backend import Scripted, script
from tracer.backend import DescriptorStat, DescriptorType, DirectoryEntry
from tracer.errors import ErrorCode, WasiError
from tracer.operations import BY_NAME, OPERATIONS
from tracer.trace import TraceWriter, open_trace
from tracer.trace.format import CHUNK_BULK_BYTES
from tracer.tracing import tracing_backend

needs_native = pytest.mark.skipif(not NATIVE_BUILT, reason="tracer._record is not built")


def test_the_c_part_is_built_where_a_compiler_is() -> None:
    # `optional=True` in setup.py lets an install without a compiler go on in pure Python; where
    # there is one, a failed build must not pass unnoticed as a slow recorder.
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        pytest.skip(f"no C compiler ({compiler}) on this machine")
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


@needs_native
@pytest.mark.parametrize("calls", ["sample", "busy"])
def test_writer_record_gives_identical_bytes(tmp_path: Path, calls: str) -> None:
    # With the durations given, not measured, the files must be equal byte for byte.
    big = random.Random(3).randbytes(CHUNK_BULK_BYTES + 5)
    if calls == "sample":
        top = (1 << 64) - 1  # deltas past 64 bits are stored wrapped
        wide = DescriptorStat(top, top - 1, DescriptorType.REGULAR_FILE, 1, 0, top, 0, None)
        made = SAMPLE * 40 + [("read", (5, len(big), 0), big)] * 3 + SAMPLE
        made += [("stat", (5,), wide), ("stat", (5,), FILE), ("stat", (5,), wide)]
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
