"""The trace format: every operation round-trips, size targets hold, random access, refusals."""

from __future__ import annotations

import hashlib
import random
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import msgpack
import pytest

from tracer.backend import (
    Advice,
    Clock,
    DescriptorFlags,
    DescriptorStat,
    DescriptorType,
    DirectoryEntry,
    OpenFlags,
    PathFlags,
)
from tracer.errors import ErrorCode
from tracer.operations import BY_NAME, OPERATIONS
from tracer.trace import (
    Event,
    GuestInfo,
    Preopen,
    TraceError,
    TraceHeader,
    TraceWriter,
    default_trace_path,
    open_trace,
)
from tracer.trace.format import ERROR_CODES, HEADER_PREFIX
from tracer.trace.reader import CHUNK_CACHE_SIZE

# Every test runs on both recording paths, the C one and the Python one.
pytestmark = pytest.mark.usefixtures("recorder")

HEADER = TraceHeader(
    guest=GuestInfo("hello.wasm", 1234, "ab" * 32, "preview1", "guests/hello.wasm"),
    argv=("hello.wasm", "--flag", "ü"),
    env=(("HOME", "/root"), ("EMPTY", "")),
    preopens=(Preopen("/", "memory", "memory"), Preopen("data", "host-dir", "/srv/data")),
    wasmtime_version="50.0.1",
    wasitrace_version="0.1.0",
    recorded_at="2024-05-01T12:00:00+00:00",
    extra={"note": "test", "numbers": [1, 2, 3]},
)

T0 = 1_714_564_800_123_456_789
FILE = DescriptorStat(2049, 131_072, DescriptorType.REGULAR_FILE, 1, 4096, T0, T0 + 5, T0 + 5)
DIR_NO_TIMES = DescriptorStat(7, 2, DescriptorType.DIRECTORY, 3, 0, None, None, None)
BLOCK = bytes(range(256)) * 16
ENTRIES = [
    DirectoryEntry(DescriptorType.REGULAR_FILE, "in.txt", 11),
    DirectoryEntry(DescriptorType.DIRECTORY, "sub", 12),
    DirectoryEntry(DescriptorType.SYMBOLIC_LINK, "ünïcode link", 13),
]

# (operation, args, result or ErrorCode). Every operation appears; `test_sample_covers_...` checks.
SAMPLE: list[tuple[str, tuple[Any, ...], Any]] = [
    ("arguments", (), ["hello.wasm", "--flag"]),
    ("environment", (), [("HOME", "/root"), ("EMPTY", "")]),
    ("preopens", (), [(3, "/"), (4, "data")]),
    ("clock_now", (Clock.MONOTONIC,), 123_456_789_012),
    ("clock_now", (Clock.REALTIME,), T0),
    ("clock_resolution", (Clock.PROCESS_CPUTIME,), 1000),
    ("clock_now", (Clock.THREAD_CPUTIME,), ErrorCode.UNSUPPORTED),
    ("sleep", (1_500_000,), None),
    ("random_bytes", (8,), b"\x01\x02\x03\x04\x05\x06\x07\x08"),
    ("random_bytes", (64,), bytes(range(64))),
    ("read_stdin", (4096,), b"line one\n"),
    ("read_stdin", (4096,), b""),
    ("write_stdout", (b"hello\n",), None),
    ("write_stderr", (b"E" * 100,), None),
    ("write_stderr", (b"E" * 100,), ErrorCode.PIPE),
    ("open_at", (3, PathFlags.SYMLINK_FOLLOW, "data/in.txt", 0, DescriptorFlags.READ), 5),
    ("open_at", (3, 0, "missing.txt", 0, DescriptorFlags.READ), ErrorCode.NO_ENTRY),
    ("open_at", (3, 0, "out.txt", OpenFlags.CREATE | OpenFlags.TRUNCATE, 2), 6),
    ("read", (5, 4096, 0), BLOCK),
    ("read", (5, 4096, 0), BLOCK),
    ("read", (5, 4096, 4096), b""),
    ("read", (6, 10, 0), ErrorCode.BAD_DESCRIPTOR),
    ("write", (6, BLOCK, 0), 4096),
    ("write", (6, b"short", 4096), 5),
    ("append", (6, b"tail\n"), 5),
    ("append", (5, b"x"), ErrorCode.BAD_DESCRIPTOR),
    ("stat", (5,), FILE),
    ("stat", (5,), FILE),
    ("stat_at", (3, 1, "data"), DIR_NO_TIMES),
    ("stat_at", (3, 0, "nope"), ErrorCode.NO_ENTRY),
    ("read_directory", (3,), ENTRIES),
    ("read_directory", (4,), []),
    ("create_directory_at", (3, "new"), None),
    ("create_directory_at", (3, "new"), ErrorCode.EXIST),
    ("remove_directory_at", (3, "new"), None),
    ("unlink_file_at", (3, "out.txt"), None),
    ("rename_at", (3, "a.txt", 4, "b.txt"), None),
    ("symlink_at", (3, "data/in.txt", "link"), None),
    ("readlink_at", (3, "link"), "data/in.txt"),
    ("link_at", (3, 0, "a.txt", 4, "c.txt"), ErrorCode.CROSS_DEVICE),
    ("set_size", (6, 100), None),
    ("set_times", (6, "now", None), None),
    ("set_times", (6, T0, "now"), None),
    ("set_times_at", (3, 1, "data/in.txt", None, T0 - 1), None),
    ("sync", (6,), None),
    ("sync_data", (6,), ErrorCode.IO),
    ("advise", (5, 0, 4096, Advice.SEQUENTIAL), None),
    ("close", (6,), None),
    ("exit", (3,), None),
]


def duration_ns(i: int) -> int:
    """A plausible duration for the i-th call: 1 to 12 µs, never a whole microsecond."""
    return 1000 * (1 + i % 12) + 999


def write_sample(path: Path, calls: list[tuple[str, tuple[Any, ...], Any]]) -> None:
    with TraceWriter(path, HEADER) as writer:
        for i, (name, args, outcome) in enumerate(calls):
            if isinstance(outcome, ErrorCode):
                writer.record(BY_NAME[name].code, args, None, outcome, duration_ns(i))
            else:
                writer.record(BY_NAME[name].code, args, outcome, None, duration_ns(i))


def test_sample_covers_every_operation() -> None:
    assert {name for name, _, _ in SAMPLE} == {op.name for op in OPERATIONS}


def test_every_operation_round_trips_args_results_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "all.wtrace"
    write_sample(path, SAMPLE)
    with open_trace(path) as trace:
        assert len(trace) == len(SAMPLE)
        events = list(trace)
    for i, (event, (name, args, outcome)) in enumerate(zip(events, SAMPLE, strict=True)):
        assert event.seq == i
        assert event.op is BY_NAME[name]
        assert event.args == args
        if isinstance(outcome, ErrorCode):
            assert (event.error, event.result) == (outcome, None)
        else:
            assert (event.error, event.result) == (None, outcome)
        assert event.duration_ns == duration_ns(i) - 999  # whole microseconds, rounded down


def test_values_come_back_as_their_types(tmp_path: Path) -> None:
    path = tmp_path / "types.wtrace"
    write_sample(path, SAMPLE)
    with open_trace(path) as trace:
        by_op: dict[str, Event] = {}
        for event in trace:
            by_op.setdefault(event.op.name, event)
    assert type(by_op["clock_now"].args[0]) is Clock
    assert type(by_op["advise"].args[3]) is Advice
    stat = by_op["stat"].result
    assert type(stat) is DescriptorStat and type(stat.type) is DescriptorType
    assert all(type(e) is DirectoryEntry for e in by_op["read_directory"].result)
    assert type(by_op["open_at"].error) is type(None)
    assert by_op["environment"].result == [("HOME", "/root"), ("EMPTY", "")]
    assert all(type(pair) is tuple for pair in by_op["preopens"].result)


def test_error_code_table_lists_every_error_code_once() -> None:
    assert sorted(ERROR_CODES) == sorted(ErrorCode)
    assert len(set(ERROR_CODES)) == len(ERROR_CODES)


def test_header_and_footer_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "hf.wtrace"
    write_sample(path, SAMPLE)
    with TraceWriter(tmp_path / "exit.wtrace", HEADER) as writer:
        writer.record(BY_NAME["exit"].code, (7,), None, None, 10)
        writer.close(7)
    with open_trace(path) as trace:
        assert trace.header == HEADER
        assert trace.footer is not None
        assert trace.footer.exit_status is None
        assert trace.footer.total_events == len(SAMPLE)
        assert trace.footer.counts["read"] == 4
        assert trace.footer.errors == {
            name: sum(1 for n, _, o in SAMPLE if n == name and isinstance(o, ErrorCode))
            for name in {n for n, _, o in SAMPLE if isinstance(o, ErrorCode)}
        }
        assert (trace.ended_early, trace.damage) == (False, None)
    with open_trace(tmp_path / "exit.wtrace") as trace:
        assert trace.footer is not None and trace.footer.exit_status == 7


def test_header_for_guest_hashes_the_guest(tmp_path: Path) -> None:
    guest = tmp_path / "prog.wasm"
    guest.write_bytes(b"\0asm\1\0\0\0")
    header = TraceHeader.for_guest(guest, "preview2", ["prog.wasm"], [("A", "1")])
    assert header.guest.name == "prog.wasm"
    assert header.guest.size == 8
    assert header.guest.sha256 == hashlib.sha256(b"\0asm\1\0\0\0").hexdigest()
    assert header.guest.abi == "preview2"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", header.recorded_at)


def test_an_empty_trace_has_a_footer_and_no_events(tmp_path: Path) -> None:
    path = tmp_path / "empty.wtrace"
    TraceWriter(path, HEADER).close(0)
    with open_trace(path) as trace:
        assert len(trace) == 0
        assert list(trace) == []
        assert trace.footer is not None and trace.footer.exit_status == 0


def many_events(n: int, seed: int = 1) -> list[tuple[str, tuple[Any, ...], Any]]:
    rng = random.Random(seed)
    blocks = [rng.randbytes(4096) for _ in range(8)]
    calls: list[tuple[str, tuple[Any, ...], Any]] = []
    for i in range(n):
        pick = rng.randrange(6)
        if pick == 0:
            calls.append(("read", (5, 4096, 4096 * rng.randrange(8)), rng.choice(blocks)))
        elif pick == 1:
            calls.append(("open_at", (3, 0, f"dir/file{rng.randrange(50)}.txt", 0, 1), 5 + i))
        elif pick == 2:
            calls.append(("stat", (5,), FILE._replace(size=rng.randrange(100))))
        elif pick == 3:
            calls.append(("clock_now", (Clock.MONOTONIC,), i * 1000))
        elif pick == 4:
            calls.append(("unlink_file_at", (3, f"tmp{i}"), ErrorCode.NO_ENTRY))
        else:
            calls.append(("write", (6, rng.randbytes(rng.randrange(100)), i), 0))
    return calls


def test_random_access_equals_iteration(tmp_path: Path) -> None:
    path = tmp_path / "many.wtrace"
    write_sample(path, many_events(3000))
    with open_trace(path) as trace:
        events = list(trace)
        assert len(events) == 3000 == len(trace)
        assert len(trace.footer.index if trace.footer else ()) > 10
        rng = random.Random(2)
        for n in [0, 255, 256, 257, 2999, *(rng.randrange(3000) for _ in range(200))]:
            assert trace[n] == events[n]
        assert trace[-1] == events[-1]
        assert list(trace.events(700, 1300)) == events[700:1300]
        assert list(trace.events(2990, 10_000)) == events[2990:]
        assert trace[10:20] == events[10:20]
        with pytest.raises(IndexError):
            trace[3000]


def test_reader_keeps_a_bounded_number_of_chunks(tmp_path: Path) -> None:
    path = tmp_path / "many.wtrace"
    write_sample(path, many_events(5000))
    with open_trace(path) as trace:
        for _ in trace:
            assert len(trace._cache) <= CHUNK_CACHE_SIZE


def test_big_write_as_first_event_of_a_chunk(tmp_path: Path) -> None:
    # 100 KiB of new data fills a chunk before its event is buffered: the chunk holds only the
    # definition, and the event that uses it follows in the next one.
    big = random.Random(3).randbytes(100_000)
    calls = [("write", (6, big, 0), 100_000), ("read", (6, 100_000, 0), big)]
    path = tmp_path / "big.wtrace"
    write_sample(path, calls)
    with open_trace(path) as trace:
        assert [(e.args, e.result) for e in trace] == [(c[1], c[2]) for c in calls]
        assert trace[1].result == big


def test_writer_refuses_records_after_close(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path / "c.wtrace", HEADER)
    writer.close(0)
    with pytest.raises(ValueError, match="closed"):
        writer.record(BY_NAME["close"].code, (3,), None, None, 1)


def test_default_trace_path_names_guest_and_time(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    when = datetime(2024, 5, 1, 13, 4, 5)
    first = default_trace_path("guests/hello.wasm", when)
    assert first == Path("traces/hello-20240501-130405.wtrace")
    first.parent.mkdir()
    first.write_bytes(b"")
    second = default_trace_path("/x/hello.wasm", when)
    assert second == Path("traces/hello-20240501-130405-2.wtrace")


def test_stats_with_64_bit_fields_round_trip(tmp_path: Path) -> None:
    # Inodes and devices use all 64 bits on some filesystems; a delta between a huge one and a
    # small one does not fit msgpack's int64, so it is stored wrapped around 2**64.
    top = (1 << 64) - 1
    stats = [
        DescriptorStat(top, (1 << 63) + 5, DescriptorType.REGULAR_FILE, 1, 0, T0, None, top),
        DescriptorStat(1, 1, DescriptorType.DIRECTORY, 2, top, 0, 1, None),
        DescriptorStat(top, top, DescriptorType.REGULAR_FILE, 1, 0, None, top, 5),
        DescriptorStat(0, 0, DescriptorType.REGULAR_FILE, 1, 0, 0, top, 0),
    ]
    calls = [("stat", (5,), st) for st in stats]
    path = tmp_path / "wide.wtrace"
    write_sample(path, calls)
    with open_trace(path) as trace:
        assert [e.result for e in trace] == stats


# -- sizes -----------------------------------------------------------------------------------
def bytes_per_event(tmp_path: Path, calls: list[tuple[str, tuple[Any, ...], Any]]) -> float:
    empty = tmp_path / "empty.wtrace"
    write_sample(empty, [])
    path = tmp_path / "sized.wtrace"
    write_sample(path, calls)
    return (path.stat().st_size - empty.stat().st_size) / len(calls)


def test_small_seek_like_events_cost_at_most_16_bytes(tmp_path: Path) -> None:
    rng = random.Random(4)
    calls = [("read", (5, 0, rng.randrange(1 << 30)), b"") for _ in range(20_000)]
    assert bytes_per_event(tmp_path, calls) <= 16


def test_stat_events_cost_at_most_32_bytes(tmp_path: Path) -> None:
    # A build-tool-like walk: 2000 files of one checkout (timestamps within two seconds), each
    # stat-ed once by descriptor and then again by path a few times.
    rng = random.Random(5)
    files = []
    for i in range(2000):
        t = T0 + rng.randrange(2_000_000_000)
        files.append(
            DescriptorStat(
                66306, 900_000 + i, DescriptorType.REGULAR_FILE, 1, rng.randrange(100_000), t, t, t
            )
        )
    calls: list[tuple[str, tuple[Any, ...], Any]] = [("stat", (5,), st) for st in files]
    assert bytes_per_event(tmp_path, calls) <= 32  # every stat distinct
    for _ in range(3):
        calls += [("stat_at", (3, 1, f"src/f{i}.c"), st) for i, st in enumerate(files)]
    assert bytes_per_event(tmp_path, calls) <= 32


def test_rereading_64_blocks_costs_at_most_64_bytes_per_read(tmp_path: Path) -> None:
    rng = random.Random(6)
    blocks = [rng.randbytes(4096) for _ in range(64)]
    calls = [("read", (5, 4096, 4096 * b), blocks[b]) for _ in range(100) for b in range(64)]
    assert bytes_per_event(tmp_path, calls) <= 64  # data stored once, even counted in
    more = calls + calls
    # Each further read of data already stored costs only its reference.
    assert bytes_per_event(tmp_path, more) * len(more) - bytes_per_event(tmp_path, calls) * len(
        calls
    ) <= 16 * len(calls)


def test_a_digest_collision_costs_a_definition_not_wrong_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tracer.trace.writer.xxh3_64_intdigest", lambda data: 7)
    blocks = [bytes([n]) * 64 for n in range(3)]
    calls = [("read", (5, 64, 0), blocks[b]) for b in (0, 1, 0, 2, 2, 1)]
    path = tmp_path / "c.wtrace"
    write_sample(path, calls)
    with open_trace(path) as trace:
        assert [e.result for e in trace] == [c[2] for c in calls]


# -- refusals --------------------------------------------------------------------------------
def test_a_file_that_is_not_a_trace_is_refused_with_a_sentence(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some text, long enough to look at\n")
    with pytest.raises(TraceError) as info:
        open_trace(path)
    message = str(info.value)
    assert "is not a wasitrace trace" in message and "'wasitrace-trace'" in message
    assert message.endswith(".")


def test_a_msgpack_file_that_is_not_a_trace_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.msgpack"
    path.write_bytes(msgpack.packb(["something", 1, {"a": 1}]))
    with pytest.raises(TraceError, match="is not a wasitrace trace"):
        open_trace(path)


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    with pytest.raises(TraceError, match="is empty"):
        open_trace(path)


def test_a_newer_version_is_refused_naming_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "v2.wtrace"
    write_sample(path, SAMPLE[:3])
    data = bytearray(path.read_bytes())
    data[len(HEADER_PREFIX)] = 2
    path.write_bytes(bytes(data))
    with pytest.raises(TraceError) as info:
        open_trace(path)
    assert "format version 2" in str(info.value)
    assert "reads format version 1 only" in str(info.value)


def test_a_damaged_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.wtrace"
    write_sample(path, SAMPLE[:3])
    data = bytearray(path.read_bytes())
    data[40] ^= 0x20
    path.write_bytes(bytes(data))
    with pytest.raises(TraceError, match="damaged header"):
        open_trace(path)


def test_a_trace_with_different_operation_codes_is_refused(tmp_path: Path) -> None:
    ops = list(HEADER.operations)
    ops[0], ops[1] = ops[1], ops[0]
    path = tmp_path / "ops.wtrace"
    with TraceWriter(path, TraceHeader(**{**_fields(HEADER), "operations": tuple(ops)})):
        pass
    with pytest.raises(TraceError, match="recorded with operation 'environment' as code 0"):
        open_trace(path)


def _fields(header: TraceHeader) -> dict[str, Any]:
    return {name: getattr(header, name) for name in header.__dataclass_fields__}


# -- the format's description stays in step ---------------------------------------------------
ROOT = Path(__file__).resolve().parent.parent


def _wit_enum(name: str) -> list[str]:
    text = (ROOT / "wit" / "trace.wit").read_text()
    block = text[text.index(f"enum {name} {{") :]
    block = block[block.index("{") + 1 : block.index("}")]
    return [n.strip() for n in block.split(",") if n.strip()]


def test_wit_operation_enum_is_the_operation_codes() -> None:
    assert _wit_enum("operation") == [op.name.replace("_", "-") for op in OPERATIONS]


def test_wit_error_code_enum_is_the_error_code_table() -> None:
    assert _wit_enum("error-code") == [code.value for code in ERROR_CODES]


def test_the_format_document_lists_every_operation_and_error_code() -> None:
    doc = (ROOT / "docs" / "trace-format.md").read_text()
    for op in OPERATIONS:
        assert f"| {op.code} | `{op.name}` |" in doc
    table = doc[doc.index("### Error codes") : doc.index("## Footer")]
    cells = re.findall(r"\| (\d+) \| ([a-z-]+) ", table)
    assert sorted((int(n), name) for n, name in cells) == [
        (i, code.value) for i, code in enumerate(ERROR_CODES)
    ]
