"""Rendering events: strace-like lines, filter expressions, stats tables, JSON Lines."""

from __future__ import annotations

import base64
import json
from typing import Any

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
from tracer.operations import BY_NAME
from tracer.render import (
    FilterError,
    compute_stats,
    export_jsonl,
    format_event,
    format_events,
    format_stats,
    parse_filter,
)
from tracer.trace import Event


def ev(
    seq: int,
    name: str,
    args: tuple[Any, ...],
    result: Any = None,
    error: ErrorCode | None = None,
    us: int = 8,
) -> Event:
    return Event(seq, BY_NAME[name], args, result, error, us * 1000)


OPEN = ev(41, "open_at", (3, 0, "data/in.txt", 0, DescriptorFlags.READ), 5)
READ = ev(42, "read", (5, 4096, 0), b"abc" + b"\0" * 4093, us=12)
MISSING = ev(
    43,
    "open_at",
    (3, PathFlags.SYMLINK_FOLLOW, "x/missing.txt", 0, 1),
    error=ErrorCode.NO_ENTRY,
    us=3,
)
CREATE = ev(44, "open_at", (3, 0, "out.log", OpenFlags.CREATE | OpenFlags.TRUNCATE, 3), 6)
WRITE = ev(45, "write", (6, b"hello\n", 0), 6)
STAT = ev(
    46,
    "stat",
    (5,),
    DescriptorStat(
        1, 77, DescriptorType.REGULAR_FILE, 1, 4096, None, 1_714_564_800_000_000_000, None
    ),
)
CLOSE = ev(47, "close", (5,), None, us=1500)
EVENTS = [OPEN, READ, MISSING, CREATE, WRITE, STAT, CLOSE]


@pytest.mark.parametrize(
    ("event", "line"),
    [
        (OPEN, '#41 open_at(fd 3, "data/in.txt", read) -> fd 5  (8 µs)'),
        (READ, '#42 read(fd 5, 4096 @0) -> 4096 bytes "abc\\x00…"  (12 µs)'),
        (
            MISSING,
            '#43 open_at(fd 3, symlink-follow, "x/missing.txt", read) -> error no-entry  (3 µs)',
        ),
        (CREATE, '#44 open_at(fd 3, "out.log", create|truncate, read|write) -> fd 6  (8 µs)'),
        (WRITE, '#45 write(fd 6, 6 bytes "hell…" @0) -> 6  (8 µs)'),
        (
            STAT,
            "#46 stat(fd 5) -> regular-file, size 4096, inode 77, "
            "modified 2024-05-01T12:00:00Z  (8 µs)",
        ),
        (CLOSE, "#47 close(fd 5) -> ok  (1.5 ms)"),
        (ev(1, "clock_now", (Clock.MONOTONIC,), 42), "#1 clock_now(monotonic) -> 42  (8 µs)"),
        (ev(2, "set_times", (4, "now", None)), "#2 set_times(fd 4, now, no-change) -> ok  (8 µs)"),
        (
            ev(3, "advise", (4, 100, 50, Advice.DONT_NEED)),
            "#3 advise(fd 4, 50 @100, dont-need) -> ok  (8 µs)",
        ),
        (
            ev(4, "read_directory", (3,), [DirectoryEntry(DescriptorType.DIRECTORY, "sub", 9)]),
            '#4 read_directory(fd 3) -> 1 entry: "sub" directory  (8 µs)',
        ),
        (
            ev(5, "rename_at", (3, "a", 4, 'q"b')),
            '#5 rename_at(fd 3, "a", fd 4, "q\\"b") -> ok  (8 µs)',
        ),
    ],
)
def test_event_lines_read_like_strace(event: Event, line: str) -> None:
    assert format_event(event, max_bytes=4) == line


def test_max_bytes_controls_how_much_data_is_shown() -> None:
    assert format_event(WRITE, max_bytes=0).startswith("#45 write(fd 6, 6 bytes @0)")
    assert '"hello\\n"' in format_event(WRITE, max_bytes=100)


def select(expression: str) -> list[int]:
    keep = parse_filter(expression)
    return [e.seq for e in EVENTS if keep(e)]


@pytest.mark.parametrize(
    ("expression", "seqs"),
    [
        ("", [41, 42, 43, 44, 45, 46, 47]),
        ("op=open_at", [41, 43, 44]),
        ("op=read,write", [42, 45]),
        ("op=*_at", [41, 43, 44]),
        ("op=filesystem !op=open_at", [42, 45, 46, 47]),
        ("path=*.txt", [41, 43]),
        ("path=data/*", [41]),
        ("fd=5", [41, 42, 46, 47]),  # open_at returned it, the others use it
        ("fd=5,6 op=write", [45]),
        ("error", [43]),
        ("error=no-entry,access", [43]),
        ("error=access", []),
        ("ok op=open_at", [41, 44]),
        ("seq=42-44", [42, 43, 44]),
        ("seq=46-", [46, 47]),
        ("seq=45", [45]),
    ],
)
def test_filter_expressions_select_events(expression: str, seqs: list[int]) -> None:
    assert select(expression) == seqs


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("op=reed", "'reed' matches no operation"),
        ("colour=red", "is not understood"),
        ("error=nope", "not a WASI error code"),
        ("fd=five", "needs descriptor numbers"),
        ("path=", "has no value"),
    ],
)
def test_bad_filter_expressions_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        parse_filter(expression)


def test_format_events_applies_the_filter() -> None:
    lines = list(format_events(EVENTS, keep=parse_filter("error")))
    assert lines == [format_event(MISSING)]


def test_stats_count_calls_errors_time_and_bytes() -> None:
    stats = compute_stats(EVENTS)
    assert stats["open_at"].calls == 3 and stats["open_at"].errors == 1
    assert stats["open_at"].time_ns == 19_000
    assert stats["read"].bytes_in == 4096 and stats["write"].bytes_out == 6
    lines = format_stats(stats)
    assert lines[0].split() == [
        "%",
        "time",
        "seconds",
        "µs/call",
        "calls",
        "errors",
        "bytes",
        "in",
        "bytes",
        "out",
        "operation",
    ]
    # Sorted by time: close took 1.5 ms of the 1.547 ms in all.
    assert lines[2].split() == ["96.96", "0.001500", "1500", "1", "0", "0", "close"]
    assert lines[-1].split() == ["100.00", "0.001547", "221", "7", "1", "4096", "6", "total"]


def test_json_lines_carry_every_field_and_bytes_as_base64_and_text() -> None:
    rows = [json.loads(line) for line in export_jsonl([READ, MISSING, WRITE, STAT])]
    assert rows[0]["args"] == {"fd": 5, "length": 4096, "offset": 0}
    assert base64.b64decode(rows[0]["result"]["base64"]) == READ.result
    assert rows[0]["result"]["len"] == 4096
    assert rows[1]["error"] == "no-entry" and "result" not in rows[1]
    assert rows[2]["args"]["data"]["text"] == "hello\n"
    assert rows[3]["result"]["type"] == "regular-file"
    assert rows[3]["result"]["data_access_timestamp"] is None
    cut = json.loads(next(export_jsonl([READ], max_bytes=3)))
    assert cut["result"] == {"len": 4096, "base64": "YWJj", "text": "abc", "cut": True}
