"""`diff_traces`: two traces aligned call by call, shown as `diff -u` with a summary."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from replay.api import memory_directory, record_guest
from replay.diff import diff_traces
from tracer.backend import DescriptorStat, DescriptorType
from tracer.errors import ErrorCode
from tracer.operations import BY_NAME
from tracer.trace import GuestInfo, Trace, TraceHeader, TraceWriter, open_trace

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "examples" / "catalog.wasm"
DATA = ROOT / "examples" / "data"

HEADER = TraceHeader(
    GuestInfo("guest.wasm", 1000, "ab" * 32, "preview1", "guest.wasm"),
    argv=("guest.wasm",),
    env=(),
    preopens=(),
    wasmtime_version="50.0.1",
    wasitrace_version="0.1.0",
    recorded_at="2025-01-01T00:00:00+00:00",
)

Call = tuple[str, tuple[Any, ...], Any]  # operation, arguments, result or ErrorCode

BASE: list[Call] = [
    ("arguments", (), ["guest.wasm"]),
    ("preopens", (), [(3, "/data")]),
    ("open_at", (3, 1, "in.txt", 0, 1), 4),
    ("read", (4, 4096, 0), b"hello\n"),
    ("read", (4, 4096, 6), b""),
    ("close", (4,), None),
    ("open_at", (3, 1, "missing.txt", 0, 1), ErrorCode.NO_ENTRY),
    ("write_stdout", (b"hello\n",), None),
    ("exit", (0,), None),
]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Traces are written by bare names, so the headers of the golden outputs name them alike.
    monkeypatch.chdir(tmp_path)


def _trace(name: str, calls: list[Call], exit_status: int = 0, duration: int = 1000) -> Trace:
    writer = TraceWriter(name, HEADER)
    for op, args, outcome in calls:
        if isinstance(outcome, ErrorCode):
            writer.record(BY_NAME[op].code, args, None, outcome, duration)
        else:
            writer.record(BY_NAME[op].code, args, outcome, None, duration)
    writer.close(exit_status)
    return open_trace(name)


def _diff(a: list[Call], b: list[Call], **options: Any) -> list[str]:
    with _trace("a.wtrace", a) as first, _trace("b.wtrace", b) as second:
        return diff_traces(first, second, **options)


def test_equal_traces_are_one_line_that_says_so_whatever_the_durations() -> None:
    with _trace("a.wtrace", BASE) as a, _trace("b.wtrace", BASE, duration=999_000) as b:
        lines = diff_traces(a, b)
    assert lines == [
        "The traces a.wtrace and b.wtrace are the same: 9 calls alike (event numbers, durations, "
        "clock readings, random bytes and stat times aside), and both guests ended with exit "
        "status 0."
    ]


def test_one_changed_call() -> None:
    changed = list(BASE)
    changed[3] = ("read", (4, 4096, 0), b"HELLO\n")
    assert _diff(BASE, changed, context=2) == [
        "--- a.wtrace\tguest.wasm abababababab, 9 calls, exit status 0",
        "+++ b.wtrace\tguest.wasm abababababab, 9 calls, exit status 0",
        "@@ -1,5 +1,5 @@",
        ' preopens() -> [fd 3 "/data"]',
        ' open_at(fd 3, symlink-follow, "in.txt", read) -> fd 4',
        '-read(fd 4, 4096 @0) -> 6 bytes "hello\\n"',
        '+read(fd 4, 4096 @0) -> 6 bytes "HELLO\\n"',
        " read(fd 4, 4096 @6) -> 0 bytes",
        " close(fd 4) -> ok",
        "",
        "The traces part at event #3 of a.wtrace, #3 of b.wtrace: read differs in outcome.",
        "Calls that differ: 1 changed, 0 added, 0 removed.",
        "  read  1 changed",
        "Both guests ended with exit status 0.",
    ]


def test_one_added_call() -> None:
    added = [*BASE[:6], ("read", (4, 4096, 6), b""), *BASE[6:]]
    assert _diff(BASE, added, context=2) == [
        "--- a.wtrace\tguest.wasm abababababab, 9 calls, exit status 0",
        "+++ b.wtrace\tguest.wasm abababababab, 10 calls, exit status 0",
        "@@ -4,4 +4,5 @@",
        " read(fd 4, 4096 @6) -> 0 bytes",
        " close(fd 4) -> ok",
        "+read(fd 4, 4096 @6) -> 0 bytes",
        ' open_at(fd 3, symlink-follow, "missing.txt", read) -> error no-entry',
        ' write_stdout(6 bytes "hello\\n") -> ok',
        "",
        "The traces part at event #6 of a.wtrace, #6 of b.wtrace: the second has a call to read "
        "that the first has not.",
        "Calls that differ: 0 changed, 1 added, 0 removed.",
        "  read  1 added",
        "Both guests ended with exit status 0.",
    ]


def test_one_removed_call() -> None:
    removed = BASE[:6] + BASE[7:]
    assert _diff(BASE, removed, context=2) == [
        "--- a.wtrace\tguest.wasm abababababab, 9 calls, exit status 0",
        "+++ b.wtrace\tguest.wasm abababababab, 8 calls, exit status 0",
        "@@ -4,5 +4,4 @@",
        " read(fd 4, 4096 @6) -> 0 bytes",
        " close(fd 4) -> ok",
        '-open_at(fd 3, symlink-follow, "missing.txt", read) -> error no-entry',
        ' write_stdout(6 bytes "hello\\n") -> ok',
        " exit(0) -> ok",
        "",
        "The traces part at event #6 of a.wtrace, #6 of b.wtrace: the first has a call to open_at "
        "that the second has not.",
        "Calls that differ: 0 changed, 0 added, 1 removed.",
        "  open_at  1 removed",
        "Both guests ended with exit status 0.",
    ]


def test_changes_far_apart_make_separate_hunks_and_near_ones_share_one() -> None:
    calls: list[Call] = [("read", (4, 10, 10 * k), bytes([65 + k % 26]) * 10) for k in range(40)]
    changed = list(calls)
    for k in (5, 7, 30):
        changed[k] = ("read", (4, 10, 10 * k), b"x" * 10)
    lines = _diff(calls, changed, context=1)
    assert [line for line in lines if line.startswith("@@")] == [
        "@@ -4,5 +4,5 @@",
        "@@ -29,3 +29,3 @@",
    ]


def test_a_difference_past_the_bytes_shown_is_pointed_out() -> None:
    data = (b"abcdefghijklmnopqrstuvwxyz" * 4)[:100]
    changed = data[:80] + b"#" + data[81:]
    lines = _diff(
        [("write_stdout", (data,), None)], [("write_stdout", (changed,), None)], max_bytes=8
    )
    assert lines[2:6] == [
        "@@ -0 +0 @@",
        '-write_stdout(100 bytes "abcdefgh…") -> ok',
        '+write_stdout(100 bytes "abcdefgh…") -> ok',
        '\\ #0 and #0: data differs from byte 80: 24 bytes "uvwxyzabcdefghijklmnopqr" in the '
        'first, 24 bytes "uvwxyzab#defghijklmnopqr" in the second',
    ]


def test_clock_readings_random_bytes_and_stat_times_are_compared_only_when_asked() -> None:
    def stat(mtime: int) -> DescriptorStat:
        return DescriptorStat(1, 2, DescriptorType.REGULAR_FILE, 1, 6, mtime, mtime, mtime)

    def run(now: int, noise: bytes) -> list[Call]:
        return [
            ("clock_now", ("monotonic",), now),
            ("random_bytes", (4,), noise),
            ("stat", (4,), stat(now)),
            ("exit", (0,), None),
        ]

    first, second = run(1_000, b"\x01\x02\x03\x04"), run(2_000, b"\x09\x09\x09\x09")
    assert len(_diff(first, second)) == 1
    volatile = _diff(first, second, compare_volatile=True)
    assert "Calls that differ: 3 changed, 0 added, 0 removed." in volatile


def test_traces_with_the_same_calls_but_different_endings_differ() -> None:
    with _trace("a.wtrace", BASE) as a, _trace("b.wtrace", BASE, exit_status=3) as b:
        lines = diff_traces(a, b)
    assert lines[-1] == "The first guest ended with exit status 0, the second with exit status 3."
    assert not any(line.startswith("@@") for line in lines)


def _long(n: int) -> list[Call]:
    return [
        ("open_at", (3, 1, f"file{k}.txt", 0, 1), 4) if k % 3 == 0 else ("read", (4, 64, k), b"")
        for k in range(n)
    ]


def test_aligning_window_by_window_finds_the_same_differences_as_all_at_once() -> None:
    a = _long(3000)
    b = list(a)
    b[100] = ("read", (4, 64, 100), b"changed")
    b.insert(1500, ("close", (4,), None))
    del b[2900]
    small = _diff(a, b, window=16)
    whole = _diff(a, b, window=100_000)
    assert small == whole
    assert "Calls that differ: 1 changed, 1 added, 1 removed." in small


def test_many_differences_end_in_a_summary_by_operation() -> None:
    a = _long(600)
    b = [(op, args, b"other" if op == "read" else 5) for op, args, _ in a]
    lines = _diff(a, b, max_lines=20)
    assert len(lines) < 60
    stopped = next(line for line in lines if line.startswith("Stopped aligning"))
    assert "differing lines" in stopped
    assert not any("Calls per operation from there on" in line for line in lines)


def test_two_recordings_of_the_catalog_over_different_data(tmp_path: Path) -> None:
    other = tmp_path / "other-data"
    shutil.copytree(DATA, other)
    (other / "notes" / "wednesday.txt").write_text("Nothing much happened today.\n")
    record_guest(CATALOG, [], [], [memory_directory("/data", DATA)], tmp_path / "a.wtrace")
    record_guest(CATALOG, [], [], [memory_directory("/data", other)], tmp_path / "b.wtrace")
    with open_trace(tmp_path / "a.wtrace") as a, open_trace(tmp_path / "b.wtrace") as b:
        lines = diff_traces(a, b)
        assert (len(a), len(b)) == (44, 50)
    text = "\n".join(lines)
    assert '+read_directory(fd 5) -> 3 entries: "monday.txt" regular-file,' in text
    assert '+read(fd 5, 1024 @0) -> 29 bytes "Nothing much happened today.\\n"' in text
    assert "  open_at         1 added" in lines
    assert "  write           1 changed" in lines
    assert lines[-1] == "Both guests ended with exit status 0."
    # The new file's six calls (stat_at, open_at, stat, read, read, close) and nothing else.
    assert "Calls that differ: 10 changed, 6 added, 0 removed." in lines
