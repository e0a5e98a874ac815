"""Text for one call: the table's cells, and the detail pane (arguments, outcome, hexdumps).

The wording is `tracer.render`'s (`format_event`, `format_argument`, `format_outcome`), so the TUI
shows a call exactly as `wasitrace show` prints it; this module only lays it out.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from tracer.backend import DescriptorStat, DirectoryEntry
from tracer.render import (
    format_argument,
    format_duration,
    format_event,
    format_outcome,
    format_timestamp,
)
from tracer.trace.reader import Event

CELL_BYTES = 24  # data shown in a table cell
DUMP_LIMIT = 4096  # bytes shown as a hexdump in the detail pane; the rest is counted
_PRINTABLE = frozenset(range(0x20, 0x7F))


def call_text(event: Event, max_bytes: int = CELL_BYTES) -> str:
    """`open_at(fd 3, "a.txt", read)`: the call as `show` prints it, without number and outcome."""
    line = format_event(event, max_bytes)
    # format_event is `#N <call> -> <outcome>  (<duration>)`; cut the parts the table shows apart.
    head = f"#{event.seq} "
    tail = f" -> {format_outcome(event, max_bytes)}  ({format_duration(event.duration_ns)})"
    if line.startswith(head) and line.endswith(tail):
        return line[len(head) : len(line) - len(tail)]
    return line  # pragma: no cover -- only if render changes its layout


def outcome_text(event: Event, max_bytes: int = CELL_BYTES) -> str:
    return format_outcome(event, max_bytes)


def hexdump(data: bytes, limit: int = DUMP_LIMIT) -> list[str]:
    """Offset, 16 bytes in hex, and the same bytes as text (`.` for the unprintable)."""
    shown = data[:limit]
    width = max(4, len(f"{max(len(shown) - 1, 0):x}"))
    lines = []
    for offset in range(0, len(shown), 16):
        row = shown[offset : offset + 16]
        hex_part = " ".join(f"{b:02x}" for b in row[:8])
        if len(row) > 8:
            hex_part += "  " + " ".join(f"{b:02x}" for b in row[8:])
        text = "".join(chr(b) if b in _PRINTABLE else "." for b in row)
        lines.append(f"{offset:0{width}x}  {hex_part:<48}  {text}")
    if len(data) > limit:
        lines.append(f"… {len(data) - limit} more bytes not shown")
    return lines


def detail_text(event: Event) -> Text:
    """The detail pane for `event`: a line per argument and for the outcome, then the data of
    each bytes value as a hexdump (so the short values are never pushed off a small pane)."""
    # Not wrapped: wrapping a long hexdump at every cursor move costs more than drawing it, and
    # the pane scrolls sideways for the odd long line.
    out = Text(no_wrap=True, overflow="crop")
    status = "ok" if event.error is None else f"error {event.error.value}"
    out.append(f"#{event.seq} ", style="bold")
    out.append(event.op.name, style="bold")
    out.append(f"  {format_duration(event.duration_ns)}  ", style="dim")
    out.append(status, style="bold red" if event.error is not None else "green")
    out.append("\n")
    width = max((len(p) for p in event.op.params), default=0)
    width = max(width, len("result"))
    dumps: list[tuple[str, bytes]] = []
    values = list(zip(event.op.params, event.args, strict=True))
    for name, value in values:
        _value_lines(out, name.ljust(width), value, format_argument(event.op, name, value, 0))
        if isinstance(value, bytes) and value:
            dumps.append((name, value))
    if event.error is not None:
        out.append(f"{'error'.ljust(width)}  ", style="dim")
        out.append(event.error.value, style="bold red")
        out.append("\n")
    else:
        _value_lines(out, "result".ljust(width), event.result, format_outcome(event, 0))
        if isinstance(event.result, bytes) and event.result:
            dumps.append(("result", event.result))
    for name, data in dumps:
        out.append(f"\n{name}\n", style="bold")
        for line in hexdump(data):
            out.append(line + "\n")
    out.rstrip()
    return out


def _value_lines(out: Text, label: str, value: Any, one_line: str) -> None:
    out.append(f"{label}  ", style="dim")
    if isinstance(value, DescriptorStat):
        out.append(f"{value.type.value}\n")
        pad = " " * (len(label) + 2)
        for field in ("size", "inode", "device", "link_count"):
            out.append(f"{pad}{field} {getattr(value, field)}\n")
        for field in (
            "data_access_timestamp",
            "data_modification_timestamp",
            "status_change_timestamp",
        ):
            stamp = getattr(value, field)
            shown = "none" if stamp is None else format_timestamp(stamp)
            out.append(f"{pad}{field.split('_timestamp')[0].replace('_', ' ')} {shown}\n")
    elif isinstance(value, list) and value and isinstance(value[0], DirectoryEntry):
        out.append(f"{len(value)} entries\n")
        pad = " " * (len(label) + 2)
        for entry in value:
            out.append(f"{pad}{entry.type.value:<16} inode {entry.inode:<8} {entry.name!r}\n")
    else:
        out.append(one_line + "\n")
