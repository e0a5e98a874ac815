"""The divergence report: where a replayed guest departed from its trace, and how.

A `Divergence` is a plain value (the replayer raises it, the CLI prints it, the pytest plugin
fails a test with it, the TUI shows it). `render()` lays the recorded and the actual call side by
side, one row per field, and marks the fields that differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tracer.operations import BY_NAME, Operation
from tracer.render import format_argument, format_bytes, format_event, format_outcome
from tracer.trace.reader import Event

_MARK = ">>"


@dataclass(frozen=True)
class Call:
    """A call the guest made during replay (not necessarily one the trace has)."""

    op: Operation
    args: tuple[Any, ...]


@dataclass
class Divergence(Exception):
    """The guest departed from the trace at event `seq`.

    Exactly one of these holds: `expected` and `actual` are both set (the guest made a different
    call); `expected` is None (the guest made a call after the trace's last event); `actual` is
    None (the guest ended while the trace has more calls: `expected` is the first unmet one).
    `exit_status` pairs (recorded, actual) when only the way the guest ended differs.
    """

    seq: int
    total: int
    expected: Event | None
    actual: Call | None
    recent: list[Event] = field(default_factory=list)
    exit_status: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        super().__init__(self.summary())

    @property
    def differing(self) -> list[str]:
        """The names of the fields that differ: 'operation' or parameter names."""
        if self.expected is None or self.actual is None:
            return []
        if self.expected.op is not self.actual.op:
            return ["operation"]
        return [
            name
            for name, recorded, now in zip(
                self.expected.op.params, self.expected.args, self.actual.args, strict=True
            )
            if not _same(recorded, now)
        ]

    def summary(self) -> str:
        where = f"event #{self.seq} of {self.total}"
        if self.exit_status is not None:
            recorded, actual = self.exit_status
            return f"The guest ended differently: recorded {recorded}, now {actual}."
        if self.expected is None:
            assert self.actual is not None
            return (
                f"The guest made a call after the end of the trace ({self.total} events): "
                f"{self.actual.op.name}."
            )
        if self.actual is None:
            return (
                f"The guest ended at {where}, but the trace goes on with "
                f"{self.expected.op.name} and {self.total - self.seq - 1} more calls."
            )
        fields = self.differing
        if fields == ["operation"]:
            return (
                f"The guest departed from the trace at {where}: it called "
                f"{self.actual.op.name} where the trace has {self.expected.op.name}."
            )
        return (
            f"The guest departed from the trace at {where}: {self.expected.op.name} "
            f"differs in {', '.join(fields)}."
        )

    def render(self, max_bytes: int = 48) -> str:
        lines = [self.summary(), ""]
        if self.recent:
            lines.append("  the last calls that matched:")
            lines += [f"    {format_event(e, max_bytes)}" for e in self.recent]
            lines.append("")
        if self.exit_status is None:
            lines += self._side_by_side(max_bytes)
        return "\n".join(lines).rstrip() + "\n"

    def _side_by_side(self, max_bytes: int) -> list[str]:
        rows: list[tuple[str, str, str]] = []
        expected, actual = self.expected, self.actual
        rows.append(
            (
                "operation",
                expected.op.name if expected else "(the trace has ended)",
                actual.op.name if actual else "(the guest has ended)",
            )
        )
        names: list[str] = []
        for op in (expected.op if expected else None, actual.op if actual else None):
            if op is not None:
                names += [p for p in op.params if p not in names]
        for name in names:
            rows.append((name, _value(expected, name, max_bytes), _value(actual, name, max_bytes)))
        if expected is not None:
            rows.append(("outcome", format_outcome(expected, max_bytes), "(not run)"))
        differing = set(self.differing)
        left = max(len(r[1]) for r in rows)
        left = min(max(left, len("recorded")), 48)
        out = [f"  {'':2} {'event #' + str(self.seq):<20} {'recorded':<{left}}  now"]
        for name, recorded, now in rows:
            mark = _MARK if name in differing else ""
            out.append(f"  {mark:2} {name:<20} {recorded:<{left}}  {now}")
        if expected is not None and actual is not None:
            out += _byte_difference(expected, actual)
        return out


def _same(recorded: Any, now: Any) -> bool:
    return bool(recorded == now)


def _value(item: Event | Call | None, name: str, max_bytes: int) -> str:
    if item is None or name not in item.op.params:
        return ""
    value = item.args[item.op.params.index(name)]
    return format_argument(item.op, name, value, max_bytes)


def _byte_difference(expected: Event, actual: Call) -> list[str]:
    """For data that differs: where the first differing byte is, with a little context."""
    out: list[str] = []
    if expected.op is not actual.op:
        return out
    for name, recorded, now in zip(expected.op.params, expected.args, actual.args, strict=True):
        if isinstance(recorded, bytes) and isinstance(now, bytes) and recorded != now:
            at = next(
                (i for i, (a, b) in enumerate(zip(recorded, now, strict=False)) if a != b),
                min(len(recorded), len(now)),
            )
            start = max(0, at - 8)
            out.append("")
            out.append(
                f"  {name}: {len(recorded)} bytes recorded, {len(now)} now; "
                f"the first difference is at byte {at}:"
            )
            out.append(f"     recorded  {format_bytes(recorded[start : at + 24], 64)}")
            out.append(f"     now       {format_bytes(now[start : at + 24], 64)}")
    return out


def call_of(name: str, args: tuple[Any, ...]) -> Call:
    return Call(BY_NAME[name], args)
