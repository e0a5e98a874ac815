"""Turning trace events into text: strace-like lines, filters, per-operation stats, JSON Lines.

Shared by `wasitrace show`, `stats` and `export`; every function returns strings or iterators of
lines and prints nothing. Values are shown in WASI's own words: descriptors as `fd N`, flags by
their wasi:filesystem names, errors by their `error-code` name.

Filter expressions (`parse_filter`) are space-separated terms that must all hold; a term's
comma-separated values are alternatives, `!` in front negates a term:

    op=open_at,read     operation name, or a glob (op=*_at), or a group (op=filesystem)
    path=*.txt          any path argument matches the glob ('*' also crosses '/')
    fd=5                a descriptor argument, or the descriptor returned, is one of these
    seq=100-200         event numbers, inclusive; either end may be left out (seq=100-)
    error               the call failed; error=no-entry,access for particular codes
    ok                  the call succeeded

For example `op=open_at path=*.txt error` or `fd=5 !op=close`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum, IntFlag
from fnmatch import fnmatchcase
from typing import Any

from tracer.backend import DescriptorFlags, DescriptorStat, DirectoryEntry, OpenFlags, PathFlags
from tracer.errors import ErrorCode
from tracer.operations import OPERATIONS, Group, Operation
from tracer.trace.format import OP_SPECS, Footer, Kind, TraceHeader
from tracer.trace.reader import Event

DEFAULT_MAX_BYTES = 32
MAX_ENTRIES_SHOWN = 8
_FLAG_TYPES: dict[str, type[IntFlag]] = {
    "path_flags": PathFlags,
    "old_path_flags": PathFlags,
    "open_flags": OpenFlags,
    "flags": DescriptorFlags,
}
_PATH_PARAMS = ("path", "old_path", "new_path")
_TIMESTAMP_PARAMS = ("data_access_timestamp", "data_modification_timestamp")


# -- one event as one line -------------------------------------------------------------------
def format_event(event: Event, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """`#41 open_at(fd 3, "data/in.txt", read) -> fd 5  (8 µs)`."""
    args = ", ".join(_format_args(event, max_bytes))
    return (
        f"#{event.seq} {event.op.name}({args}) -> {format_outcome(event, max_bytes)}"
        f"  ({format_duration(event.duration_ns)})"
    )


def format_events(
    events: Iterable[Event],
    max_bytes: int = DEFAULT_MAX_BYTES,
    keep: Callable[[Event], bool] | None = None,
) -> Iterator[str]:
    """One line per event that `keep` accepts (all of them without a filter)."""
    for event in events:
        if keep is None or keep(event):
            yield format_event(event, max_bytes)


def format_outcome(event: Event, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    if event.error is not None:
        return f"error {event.error.value}"
    result = event.result
    spec = OP_SPECS[event.op.code].result
    if spec.kind is Kind.NONE:
        return "ok"
    if event.op.returns_descriptor:
        return f"fd {result}"
    if spec.kind is Kind.BYTES:
        return format_bytes(result, max_bytes)
    if spec.kind is Kind.STR:
        return _quote(result)
    if spec.kind is Kind.STAT:
        return _format_stat(result)
    if spec.kind is Kind.ENTRIES:
        return _format_entries(result)
    if event.op.name == "environment":
        return "[" + ", ".join(f"{k}={v}" for k, v in result) + "]"
    if event.op.name == "preopens":
        return "[" + ", ".join(f"fd {fd} {_quote(path)}" for fd, path in result) + "]"
    if spec.kind is Kind.STRINGS:
        return "[" + ", ".join(_quote(s) for s in result) + "]"
    return str(result)


def _format_args(event: Event, max_bytes: int) -> Iterator[str]:
    op = event.op
    values = dict(zip(op.params, event.args, strict=True))
    # A length or data and its offset read best as one item: "4096 @0".
    sized = next((p for p in op.params if p in ("length", "data")), None)
    for name, value in values.items():
        if name == "offset" and sized is not None:
            continue
        if name in _FLAG_TYPES and not value and name != "flags":
            # Empty lookup and open flags are the common case and only add noise.
            continue
        text = format_argument(op, name, value, max_bytes)
        if name == sized and "offset" in values:
            text += f" @{values['offset']}"
        yield text


def format_argument(
    op: Operation, name: str, value: Any, max_bytes: int = DEFAULT_MAX_BYTES
) -> str:
    """One argument of `op` as `show` writes it: `fd 3`, `read|write`, `"a.txt"`, ..."""
    if name in op.descriptors:
        return f"fd {value}"
    if name in _FLAG_TYPES:
        return _flag_names(_FLAG_TYPES[name], value) or "0"
    if name in _PATH_PARAMS:
        return _quote(value)
    if name in _TIMESTAMP_PARAMS:
        return _format_new_timestamp(value)
    if name == "duration":
        return format_duration(value)
    return format_bytes(value, max_bytes) if isinstance(value, bytes) else _plain(value)


def _plain(value: Any) -> str:
    return value.value if isinstance(value, Enum) else str(value)


def _flag_names(flag_type: type[IntFlag], value: int) -> str:
    names = [f.name.lower().replace("_", "-") for f in flag_type if f.name and value & f.value]
    rest = value & ~sum(f.value for f in flag_type)
    if rest:
        names.append(hex(rest))
    return "|".join(names)


def format_bytes(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """`4096 bytes "abc…"`: the length, and up to `max_bytes` of the data, escaped."""
    if not data:
        return "0 bytes"
    unit = "byte" if len(data) == 1 else "bytes"
    if max_bytes <= 0:
        return f"{len(data)} {unit}"
    shown = data[:max_bytes].decode("utf-8", errors="backslashreplace")
    more = "…" if len(data) > max_bytes else ""
    return f'{len(data)} {unit} "{_escape(shown)}{more}"'


def _escape(text: str) -> str:
    out = []
    for ch in text:
        if ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch == '"':
            out.append('\\"')
        elif ch.isprintable() or ch == "\\":
            out.append(ch)
        else:
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
    return "".join(out)


def _quote(text: str) -> str:
    return '"' + _escape(text.replace("\\", "\\\\")) + '"'


def format_duration(ns: int) -> str:
    us = ns // 1000
    if us < 1000:
        return f"{us} µs"
    if us < 1_000_000:
        return f"{us / 1000:.1f} ms"
    return f"{us / 1_000_000:.2f} s"


def format_timestamp(ns: int) -> str:
    """Nanoseconds since the epoch as UTC ISO 8601, with the fraction only when there is one."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    try:
        stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return f"{ns} ns"
    return f"{stamp}.{fraction:09d}Z" if fraction else f"{stamp}Z"


def _format_new_timestamp(value: int | str | None) -> str:
    if value is None:
        return "no-change"
    if isinstance(value, str):
        return value
    return format_timestamp(value)


def _format_stat(stat: DescriptorStat) -> str:
    parts = [stat.type.value, f"size {stat.size}", f"inode {stat.inode}"]
    if stat.link_count != 1:
        parts.append(f"links {stat.link_count}")
    if stat.data_modification_timestamp is not None:
        parts.append(f"modified {format_timestamp(stat.data_modification_timestamp)}")
    return ", ".join(parts)


def _format_entries(entries: list[DirectoryEntry]) -> str:
    shown = ", ".join(f"{_quote(e.name)} {e.type.value}" for e in entries[:MAX_ENTRIES_SHOWN])
    more = ", …" if len(entries) > MAX_ENTRIES_SHOWN else ""
    unit = "entry" if len(entries) == 1 else "entries"
    return f"{len(entries)} {unit}" + (f": {shown}{more}" if entries else "")


# -- filters ---------------------------------------------------------------------------------
class FilterError(ValueError):
    """A filter expression that does not parse; the message says what is wrong and what is valid."""


_FILTER_HELP = (
    "a term is op=NAMES, path=GLOBS, fd=NUMBERS, seq=FROM-TO, error, error=CODES or ok, "
    "optionally preceded by '!'"
)
_GROUPS = {g.value for g in Group}
_OP_NAMES = [op.name for op in OPERATIONS]


def parse_filter(expression: str) -> Callable[[Event], bool]:
    """A predicate over events from a filter expression (see the module docstring)."""
    tests = [_parse_term(term) for term in expression.split()]
    if not tests:
        return lambda event: True
    if len(tests) == 1:
        return tests[0]
    return lambda event: all(test(event) for test in tests)


def _parse_term(term: str) -> Callable[[Event], bool]:
    if term.startswith("!"):
        inner = _parse_term(term[1:])
        return lambda event: not inner(event)
    key, sep, raw = term.partition("=")
    values = [v for v in raw.split(",") if v] if sep else []
    if sep and not values:
        raise FilterError(f"The filter term {term!r} has no value after '='; {_FILTER_HELP}.")
    if key == "ok" and not sep:
        return lambda event: event.error is None
    if key == "error":
        if not values:
            return lambda event: event.error is not None
        codes = set()
        for v in values:
            try:
                codes.add(ErrorCode(v))
            except ValueError:
                raise FilterError(
                    f"The filter term {term!r} names {v!r}, which is not a WASI error code "
                    "(they are spelled like no-entry, access, bad-descriptor)."
                ) from None
        return lambda event: event.error in codes
    if key == "op" and values:
        for v in values:
            if v not in _GROUPS and not any(fnmatchcase(name, v) for name in _OP_NAMES):
                raise FilterError(
                    f"The filter term {term!r}: {v!r} matches no operation; the operations are "
                    f"{', '.join(_OP_NAMES)}."
                )
        names = {n for n in _OP_NAMES if any(fnmatchcase(n, v) for v in values)}
        groups = set(values) & _GROUPS
        return lambda event: event.op.name in names or event.op.group.value in groups
    if key == "path" and values:

        def has_path(event: Event) -> bool:
            for name, value in zip(event.op.params, event.args, strict=True):
                if name in _PATH_PARAMS and any(fnmatchcase(value, g) for g in values):
                    return True
            return False

        return has_path
    if key == "fd" and values:
        try:
            fds = {int(v) for v in values}
        except ValueError:
            raise FilterError(f"The filter term {term!r} needs descriptor numbers.") from None

        def has_fd(event: Event) -> bool:
            op = event.op
            if op.returns_descriptor and event.result in fds:
                return True
            return any(
                name in op.descriptors and value in fds
                for name, value in zip(op.params, event.args, strict=True)
            )

        return has_fd
    if key == "seq" and len(values) == 1:
        low, dash, high = values[0].partition("-")
        try:
            first = int(low) if low else 0
            last = int(high) if high else (first if not dash else None)
        except ValueError:
            raise FilterError(
                f"The filter term {term!r} needs event numbers such as seq=10-20."
            ) from None
        return lambda event: event.seq >= first and (last is None or event.seq <= last)
    raise FilterError(f"The filter term {term!r} is not understood; {_FILTER_HELP}.")


# -- stats -----------------------------------------------------------------------------------
@dataclass
class OpStats:
    calls: int = 0
    errors: int = 0
    time_ns: int = 0
    bytes_in: int = 0  # data that reached the guest (read, read_stdin, random_bytes)
    bytes_out: int = 0  # data the guest handed over (write, append, stdout, stderr)


def compute_stats(events: Iterable[Event]) -> dict[str, OpStats]:
    """Totals per operation name, in order of first appearance."""
    stats: dict[str, OpStats] = {}
    bytes_params = [
        tuple(i for i, p in enumerate(spec.params) if p.kind is Kind.BYTES) for spec in OP_SPECS
    ]
    for event in events:
        s = stats.get(event.op.name)
        if s is None:
            s = stats[event.op.name] = OpStats()
        s.calls += 1
        s.time_ns += event.duration_ns
        if event.error is not None:
            s.errors += 1
        elif isinstance(event.result, bytes):
            s.bytes_in += len(event.result)
        for i in bytes_params[event.op.code]:
            s.bytes_out += len(event.args[i])
    return stats


def format_stats(stats: dict[str, OpStats]) -> list[str]:
    """A table like `strace -c`: one row per operation by total time, then the totals."""
    header = (
        f"{'% time':>6}  {'seconds':>10}  {'µs/call':>8}  {'calls':>8}  {'errors':>7}  "
        f"{'bytes in':>10}  {'bytes out':>10}  operation"
    )
    rule = "  ".join("-" * w for w in (6, 10, 8, 8, 7, 10, 10, 16))
    total = OpStats()
    for s in stats.values():
        total.calls += s.calls
        total.errors += s.errors
        total.time_ns += s.time_ns
        total.bytes_in += s.bytes_in
        total.bytes_out += s.bytes_out
    rows = sorted(stats.items(), key=lambda item: (-item[1].time_ns, -item[1].calls, item[0]))

    def row(name: str, s: OpStats) -> str:
        share = 100.0 * s.time_ns / total.time_ns if total.time_ns else 0.0
        per_call = s.time_ns // 1000 // s.calls if s.calls else 0
        errors = str(s.errors) if s.errors else ""
        return (
            f"{share:6.2f}  {s.time_ns / 1e9:10.6f}  {per_call:8d}  {s.calls:8d}  {errors:>7}  "
            f"{s.bytes_in:10d}  {s.bytes_out:10d}  {name}"
        )

    return [header, rule, *(row(name, s) for name, s in rows), rule, row("total", total)]


# -- JSON Lines ------------------------------------------------------------------------------
def export_jsonl(events: Iterable[Event], max_bytes: int | None = None) -> Iterator[str]:
    """One JSON object per event. Bytes become {"len", "base64", "text"} ("text" is null unless
    the bytes are UTF-8); with `max_bytes`, data is cut to that many bytes and marked cut."""
    for event in events:
        obj: dict[str, Any] = {
            "seq": event.seq,
            "op": event.op.name,
            "args": {
                name: _json_value(value, max_bytes)
                for name, value in zip(event.op.params, event.args, strict=True)
            },
        }
        if event.error is None:
            obj["result"] = _json_value(event.result, max_bytes)
        else:
            obj["error"] = event.error.value
        obj["duration_ns"] = event.duration_ns
        yield json.dumps(obj, ensure_ascii=False)


def _json_value(value: Any, max_bytes: int | None) -> Any:
    if isinstance(value, bytes):
        shown = value if max_bytes is None else value[:max_bytes]
        try:
            text: str | None = shown.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        out: dict[str, Any] = {
            "len": len(value),
            "base64": base64.b64encode(shown).decode("ascii"),
            "text": text,
        }
        if len(shown) < len(value):
            out["cut"] = True
        return out
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, DescriptorStat | DirectoryEntry):
        return {k: _json_value(v, max_bytes) for k, v in value._asdict().items()}
    if isinstance(value, list | tuple):
        return [_json_value(v, max_bytes) for v in value]
    return value


def header_json(header: TraceHeader, footer: Footer | None = None) -> str:
    """The header (and footer, if any) as one JSON object, for the first line of an export."""
    obj: dict[str, Any] = {"format_version": header.format_version, **header.to_wire()}
    if footer is not None:
        obj["footer"] = {
            "exit_status": footer.exit_status,
            "total_events": footer.total_events,
            "counts": dict(footer.counts),
            "errors": dict(footer.errors),
        }
    return json.dumps(obj, ensure_ascii=False, default=str)


def format_summary(
    header: TraceHeader, footer: Footer | None, events: int, damage: str | None
) -> list[str]:
    """A few lines about a trace: the guest, how it was run, and how the recording ended."""
    g = header.guest
    lines = [
        f"guest      {g.name} ({g.abi}, {g.size} bytes, sha256 {g.sha256[:16]}…)",
        f"argv       {' '.join(_quote(a) for a in header.argv)}",
        f"recorded   {header.recorded_at} by wasitrace {header.wasitrace_version} "
        f"on wasmtime {header.wasmtime_version}",
    ]
    for p in header.preopens:
        lines.append(f"preopen    {p.guest_path} <- {p.backend} {p.source}")
    if footer is not None:
        status = "unknown" if footer.exit_status is None else str(footer.exit_status)
        lines.append(f"events     {events}, exit status {status}")
    else:
        lines.append(f"events     {events}, ended early")
    if damage:
        lines.append(f"note       {damage}")
    return lines
