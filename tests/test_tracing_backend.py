"""TracingBackend records exactly the calls made, delegates them, and stays out of the way."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from tracer.backend import Backend, DescriptorStat, DescriptorType, DirectoryEntry
from tracer.errors import ErrorCode, WasiError
from tracer.operations import OPERATIONS, Operation
from tracer.trace import GuestInfo, TraceHeader, TraceWriter, open_trace
from tracer.trace.format import OP_SPECS, Kind, ValueSpec
from tracer.tracing import TracingBackend, tracing_backend

# Every test runs on both recording paths, the C one and the Python one.
pytestmark = pytest.mark.usefixtures("recorder")

HEADER = TraceHeader(
    guest=GuestInfo("g.wasm", 10, "00" * 32, "preview2", "g.wasm"),
    argv=("g.wasm",),
    env=(),
    preopens=(),
    wasmtime_version="50.0.1",
    wasitrace_version="0.1.0",
    recorded_at="2024-05-01T12:00:00+00:00",
)


def sample_value(spec: ValueSpec, i: int) -> Any:
    """A value of the kind an operation's parameter or result has; varies with `i`."""
    kind = spec.kind
    if kind is Kind.INT:
        return 3 + i
    if kind is Kind.TIMESTAMP:
        return (None, "now", 1_700_000_000_000_000_000 + i)[i % 3]
    if kind is Kind.STR:
        return f"dir/file-{i}.txt"
    if kind is Kind.ENUM:
        assert spec.enum is not None
        members = list(spec.enum)
        return members[i % len(members)]
    if kind is Kind.BYTES:
        return bytes([i % 256]) * (5 + 20 * i)
    if kind is Kind.STAT:
        return DescriptorStat(1, i, DescriptorType.REGULAR_FILE, 1, i, i, None, 2 * i)
    if kind is Kind.ENTRIES:
        return [DirectoryEntry(DescriptorType.DIRECTORY, f"d{j}", j) for j in range(i % 4)]
    if kind is Kind.STRINGS:
        return [f"arg{j}" for j in range(i % 3)]
    if kind is Kind.PAIRS:
        return [(f"K{j}", f"v{j}") for j in range(i % 3)]
    return None


Call = tuple[Operation, tuple[Any, ...], Any]  # the outcome: a result, or a WasiError to raise


def script() -> list[Call]:
    """Every operation, twice succeeding and once failing, with varied values."""
    calls: list[Call] = []
    for round_ in range(3):
        for spec in OP_SPECS:
            i = round_ * 7 + spec.code
            args = tuple(sample_value(p, i) for p in spec.params)
            if round_ == 2:
                outcome: Any = WasiError(list(ErrorCode)[spec.code % len(ErrorCode)])
            else:
                outcome = sample_value(spec.result, i)
            calls.append((spec.op, args, outcome))
    return calls


class Scripted:
    """A fake inner backend: answers each call from a script and logs what it was asked."""

    def __init__(self, calls: list[Call]) -> None:
        self.script = list(calls)
        self.log: list[tuple[str, tuple[Any, ...]]] = []
        for op in OPERATIONS:
            setattr(self, op.name, self._answerer(op))

    def as_backend(self) -> Backend:
        # Its methods are set per instance, which mypy cannot see.
        return cast(Backend, self)

    def _answerer(self, op: Operation) -> Callable[..., Any]:
        def answer(*args: Any) -> Any:
            self.log.append((op.name, args))
            expected_op, _, outcome = self.script.pop(0)
            assert expected_op is op
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome

        return answer


def test_every_backend_operation_has_the_protocol_signature(tmp_path: Path) -> None:
    with TraceWriter(tmp_path / "t.wtrace", HEADER) as writer:
        backend = TracingBackend(Scripted([]).as_backend(), writer)
        for op in OPERATIONS:
            protocol = inspect.signature(getattr(Backend, op.name))
            assert list(protocol.parameters)[1:] == list(op.params)
            assert list(inspect.signature(getattr(backend, op.name)).parameters) == list(op.params)


def test_records_exactly_the_calls_made_in_order(tmp_path: Path) -> None:
    calls = script()
    inner = Scripted(calls)
    path = tmp_path / "t.wtrace"
    with TraceWriter(path, HEADER) as writer:
        backend = tracing_backend(inner.as_backend(), writer)
        for op, args, outcome in calls:
            method = getattr(backend, op.name)
            if isinstance(outcome, WasiError):
                with pytest.raises(WasiError) as info:
                    method(*args)
                assert info.value is outcome  # re-raised as it was, not a copy
            else:
                assert method(*args) == outcome
    assert inner.log == [(op.name, args) for op, args, _ in calls]
    with open_trace(path) as trace:
        events = list(trace)
    assert len(events) == len(calls)
    for event, (op, args, outcome) in zip(events, calls, strict=True):
        assert (event.op, event.args) == (op, args)
        if isinstance(outcome, WasiError):
            assert (event.result, event.error) == (None, outcome.code)
        else:
            assert (event.result, event.error) == (outcome, None)


def test_a_python_exception_propagates_and_records_nothing(tmp_path: Path) -> None:
    class Broken(Scripted):
        def __init__(self) -> None:
            super().__init__([])

            def stat(fd: int) -> DescriptorStat:
                raise RuntimeError("bug in the backend")

            self.stat = stat

    path = tmp_path / "t.wtrace"
    with TraceWriter(path, HEADER) as writer:
        backend = TracingBackend(Broken().as_backend(), writer)
        with pytest.raises(RuntimeError, match="bug in the backend"):
            backend.stat(3)  # type: ignore[attr-defined]  # set per instance from OPERATIONS
    with open_trace(path) as trace:
        assert len(trace) == 0


def test_keyword_calls_are_recorded_positionally(tmp_path: Path) -> None:
    open_at = next(op for op in OPERATIONS if op.name == "open_at")
    inner = Scripted([(open_at, (), 7)])
    path = tmp_path / "t.wtrace"
    with TraceWriter(path, HEADER) as writer:
        backend = tracing_backend(inner.as_backend(), writer)
        assert backend.open_at(3, path="a.txt", flags=1, open_flags=0, path_flags=0) == 7
    with open_trace(path) as trace:
        assert trace[0].args == (3, 0, "a.txt", 0, 1)


class _Methods:
    """An inner backend whose operations are ordinary methods (the recorder's other way in)."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def stat(self, fd: int) -> DescriptorStat:
        self.calls.append(fd)
        return DescriptorStat(1, 2, DescriptorType.REGULAR_FILE, 1, 10, None, None, None)

    def __getattr__(self, name: str) -> Any:
        return lambda *args: None


def test_operations_are_methods_of_a_class_of_the_instances_own(tmp_path: Path) -> None:
    # As methods of a class, the interpreter specializes the host's `backend.stat(fd)` sites;
    # each instance's class binds its own inner backend and writer.
    path = tmp_path / "t.wtrace"
    inner = _Methods()
    with TraceWriter(path, HEADER) as writer:
        first = TracingBackend(cast(Backend, inner), writer)
        other = TracingBackend(Scripted([]).as_backend(), writer)
        assert isinstance(first, TracingBackend) and type(first) is not type(other)
        assert "stat" in vars(type(first)) and "stat" not in vars(first)
        methods = cast(Any, first)
        assert methods.stat(4).size == 10
        assert type(methods).stat(methods, 5).size == 10
        assert methods.stat.__name__ == "stat"
    assert inner.calls == [4, 5]
    with open_trace(path) as trace:
        assert [(e.op.name, e.args) for e in trace] == [("stat", (4,)), ("stat", (5,))]


def test_data_is_recorded_as_it_was_when_passed(tmp_path: Path) -> None:
    ops = {op.name: op for op in OPERATIONS}
    inner = Scripted([(ops["write"], (), 40), (ops["read_directory"], (), [])])
    guest_memory = bytearray(b"a" * 40)
    path = tmp_path / "t.wtrace"
    with TraceWriter(path, HEADER) as writer:
        backend = tracing_backend(inner.as_backend(), writer)
        backend.write(5, memoryview(guest_memory), 0)  # type: ignore[arg-type]  # as a host might
        guest_memory[:] = b"b" * 40
        listing = backend.read_directory(3)
        listing.append(DirectoryEntry(DescriptorType.DIRECTORY, "added later", 1))
    with open_trace(path) as trace:
        assert trace[0].args[1] == b"a" * 40
        assert trace[1].result == []


def test_duration_is_the_inner_calls_time(tmp_path: Path) -> None:
    class Slow(Scripted):
        def __init__(self) -> None:
            super().__init__([])
            self.sleep = lambda duration: time.sleep(duration / 1e9)

    path = tmp_path / "t.wtrace"
    with TraceWriter(path, HEADER) as writer:
        tracing_backend(Slow().as_backend(), writer).sleep(3_000_000)
    with open_trace(path) as trace:
        assert 3_000_000 <= trace[0].duration_ns < 1_000_000_000


def test_chunks_reach_the_file_while_the_guest_runs(tmp_path: Path) -> None:
    close = next(op for op in OPERATIONS if op.name == "close")
    path = tmp_path / "t.wtrace"
    writer = TraceWriter(path, HEADER)
    backend = tracing_backend(Scripted([(close, (), None)] * 1000).as_backend(), writer)
    for fd in range(1000):
        backend.close(fd)
    # The native writer writes its chunks from a thread of its own, a few milliseconds later.
    deadline = time.monotonic() + 10
    while True:
        with open_trace(path) as trace:  # the writer is still open: no footer yet
            assert trace.ended_early
            if len(trace) >= 768 or time.monotonic() > deadline:
                assert len(trace) >= 768
                assert [e.args for e in trace] == [(fd,) for fd in range(len(trace))]
                break
        time.sleep(0.01)
    writer.close(0)


def test_an_incomplete_inner_backend_is_refused_by_name(tmp_path: Path) -> None:
    with (
        TraceWriter(tmp_path / "t.wtrace", HEADER) as writer,
        pytest.raises(TypeError, match="has no 'arguments'"),
    ):
        TracingBackend(object(), writer)  # type: ignore[arg-type]  # deliberately not a Backend


@pytest.mark.parametrize("digest", ["xxh3", "colliding"])
def test_bulk_data_read_back_exactly_even_when_digests_collide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, digest: str
) -> None:
    if digest == "colliding":
        # Every block gets the same digest: dedup must fall back on comparing contents.
        monkeypatch.setattr("tracer.trace.writer.xxh3_64_intdigest", lambda data: 7)
    ops = {op.name: op for op in OPERATIONS}
    blocks = [bytes([n]) * 4096 for n in range(3)] + [b"\0" * 4095 + b"\1"]
    order = [0, 1, 0, 2, 3, 2, 1, 0, 3, 3] * 3
    inner = Scripted([(ops["read"], (), blocks[b]) for b in order])
    path = tmp_path / "t.wtrace"
    with TraceWriter(path, HEADER) as writer:
        backend = tracing_backend(inner.as_backend(), writer)
        for _ in order:
            backend.read(5, 4096, 0)
        stored = writer.next_ids()[1]
    with open_trace(path) as trace:
        assert [e.result for e in trace] == [blocks[b] for b in order]
    if digest == "xxh3":
        assert stored == len(blocks)  # each distinct block defined once
