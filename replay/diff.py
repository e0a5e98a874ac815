"""`diff_traces`: where two traces of a guest part ways (two builds, or two inputs), as `diff -u`.

The two traces are aligned event by event on what each call was: its operation, its arguments
and its outcome. Event numbers and durations are left out (they always differ), and unless
`compare_volatile` is set, so are the values no two runs share: what `clock_now` read, what
`random_bytes` returned, and the timestamps in stat results. Lines are `show`'s lines without
the event number and duration, and the numbers in a hunk's `@@ -a,n +b,m @@` header are event
numbers as `show` prints them (from 0).

After the hunks comes a summary: the first difference in a sentence, the calls changed, added
and removed per operation, and how each guest ended.

Memory stays bounded whatever the traces' lengths: runs of equal events are compared as they
stream past, and only a window of `window` events of each trace is aligned at a time
(difflib.SequenceMatcher over a digest of each call). When the output reaches `max_lines` lines
of differences, alignment stops and the rest is summarised by counting calls per operation.
A damaged trace raises the reader's `TraceError`.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from tracer.backend import DescriptorStat
from tracer.render import format_bytes, format_duration, format_event
from tracer.trace import Trace
from tracer.trace.reader import Event

WINDOW = 2000
MAX_LINES = 400
_VOLATILE_RESULTS = frozenset({"clock_now", "random_bytes"})

Key = bytes
_Pair = tuple[Event | None, Event | None]


def diff_traces(
    a: Trace,
    b: Trace,
    *,
    context: int = 3,
    max_bytes: int = 32,
    compare_volatile: bool = False,
    window: int = WINDOW,
    max_lines: int = MAX_LINES,
) -> list[str]:
    """The differences between traces `a` and `b`, as lines (see the module docstring).

    Equal traces give one line that says so.
    """
    if window < 2:
        raise ValueError("window must be at least 2 events")
    return _Differ(a, b, context, max_bytes, compare_volatile, window, max_lines).run()


def event_key(event: Event, compare_volatile: bool = False) -> Key:
    """A digest of what a call was: operation, arguments and outcome, not its number or time."""
    result = event.result
    if not compare_volatile:
        if event.op.name in _VOLATILE_RESULTS:
            result = None
        elif isinstance(result, DescriptorStat):
            result = result._replace(
                data_access_timestamp=None,
                data_modification_timestamp=None,
                status_change_timestamp=None,
            )
    text = repr((event.op.name, event.args, result, event.error))
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def call_text(event: Event, max_bytes: int = 32) -> str:
    """`show`'s line for the event without its number and duration."""
    line = format_event(event, max_bytes)
    head = f"#{event.seq} "
    tail = f"  ({format_duration(event.duration_ns)})"
    return line[len(head) : len(line) - len(tail)]


@dataclass
class _Hunk:
    a_start: int
    b_start: int
    lines: list[str] = field(default_factory=list)
    a_count: int = 0
    b_count: int = 0

    def header(self) -> str:
        return f"@@ -{_range(self.a_start, self.a_count)} +{_range(self.b_start, self.b_count)} @@"


def _range(start: int, count: int) -> str:
    return str(start) if count == 1 else f"{start},{count}"


@dataclass
class _Tally:
    changed: Counter[str] = field(default_factory=Counter)
    added: Counter[str] = field(default_factory=Counter)
    removed: Counter[str] = field(default_factory=Counter)


class _Differ:
    def __init__(
        self,
        a: Trace,
        b: Trace,
        context: int,
        max_bytes: int,
        compare_volatile: bool,
        window: int,
        max_lines: int,
    ) -> None:
        self.a, self.b = a, b
        self.na, self.nb = len(a), len(b)
        self.context = max(context, 0)
        self.max_bytes = max_bytes
        self.window = window
        self.max_lines = max_lines
        self.compare_volatile = compare_volatile
        self.key: Callable[[Event], Key] = lambda e: event_key(e, compare_volatile)
        self.out: list[str] = []
        self.hunk: _Hunk | None = None
        self.a_end = 0  # where the last change ended in a (and b_end in b)
        self.b_end = 0
        self.shown = 0  # lines of differences written so far
        self.tally = _Tally()
        self.first: str | None = None
        self.stopped_at: tuple[int, int] | None = None

    # -- alignment ---------------------------------------------------------------------------
    def run(self) -> list[str]:
        i = j = 0
        while True:
            i, j = self._skip_equal(i, j)
            if i >= self.na and j >= self.nb:
                break
            if self.shown >= self.max_lines:
                self.stopped_at = (i, j)
            if self.stopped_at is not None:
                break
            i, j = self._align_window(i, j)
        self._close_hunk(trailing=self.stopped_at is None)
        endings = (_ending(self.a), _ending(self.b))
        if self.first is None and self.stopped_at is None and endings[0] == endings[1]:
            return [self._same_line(endings[0])]
        return self._headers() + self.out + self._summary(endings)

    def _skip_equal(self, i: int, j: int) -> tuple[int, int]:
        key = self.key
        for ea, eb in zip(self.a.events(i), self.b.events(j), strict=False):
            # Comparing the values first spares the digest for the common case, equal calls.
            same = (
                ea.op is eb.op
                and ea.args == eb.args
                and ea.result == eb.result
                and ea.error is eb.error
            )
            if not same and key(ea) != key(eb):
                break
            i += 1
            j += 1
        return i, j

    def _align_window(self, i: int, j: int) -> tuple[int, int]:
        """Align up to `window` events of each side from (i, j); returns where to go on from.

        Only the alignment of the window's first half is kept (unless the window reaches the end
        of a trace): what matches near the far edge may match better with what lies beyond it.
        """
        events_a = list(self.a.events(i, i + self.window))
        events_b = list(self.b.events(j, j + self.window))
        keys_a = [self.key(e) for e in events_a]
        keys_b = [self.key(e) for e in events_b]
        matcher = SequenceMatcher(None, keys_a, keys_b, autojunk=False)
        limit_a = len(keys_a) if i + len(keys_a) >= self.na else len(keys_a) // 2
        limit_b = len(keys_b) if j + len(keys_b) >= self.nb else len(keys_b) // 2
        done_a = done_b = 0
        for tag, a1, a2, b1, b2 in matcher.get_opcodes():
            if (done_a or done_b) and (a2 > limit_a or b2 > limit_b):
                break
            if tag != "equal":
                self._change(events_a[a1:a2], events_b[b1:b2], i + a1, j + b1)
                if self.stopped_at is not None or self.shown >= self.max_lines:
                    return i + a2, j + b2
            done_a, done_b = a2, b2
        return i + done_a, j + done_b

    # -- hunks -------------------------------------------------------------------------------
    def _change(self, old: list[Event], new: list[Event], at_a: int, at_b: int) -> None:
        budget = self.max_lines - self.shown
        if len(old) + len(new) > budget:
            # Show what fits, and summarise the rest by counting.
            n_old = min(len(old), max(budget // 2, budget - len(new)))
            old, new = old[:n_old], new[: budget - n_old]
            self.stopped_at = (at_a + len(old), at_b + len(new))
        pairs = _pair(old, new)
        if self.first is None:
            self.first = self._first_sentence(pairs[0], at_a, at_b)
        self._tally(pairs)
        hunk = self.hunk
        # The calls since the last change are equal on both sides: as many in a as in b.
        gap = at_a - self.a_end
        if hunk is not None and gap > 2 * self.context:
            self._close_hunk(trailing=True)
            hunk = None
        if hunk is None:
            lead = min(self.context, gap)
            hunk = self.hunk = _Hunk(at_a - lead, at_b - lead)
            self._context(hunk, at_a - lead, at_a)
        else:
            self._context(hunk, self.a_end, at_a)
        for e in old:
            hunk.lines.append("-" + call_text(e, self.max_bytes))
        for e in new:
            hunk.lines.append("+" + call_text(e, self.max_bytes))
        hunk.lines += self._notes(pairs)
        hunk.a_count += len(old)
        hunk.b_count += len(new)
        self.shown += len(old) + len(new)
        self.a_end, self.b_end = at_a + len(old), at_b + len(new)

    def _context(self, hunk: _Hunk, start: int, stop: int) -> None:
        for e in self.a.events(start, stop):
            hunk.lines.append(" " + call_text(e, self.max_bytes))
        hunk.a_count += max(stop - start, 0)
        hunk.b_count += max(stop - start, 0)

    def _close_hunk(self, *, trailing: bool) -> None:
        hunk = self.hunk
        if hunk is None:
            return
        if trailing:
            self._context(hunk, self.a_end, min(self.a_end + self.context, self.na))
        self.out.append(hunk.header())
        self.out += hunk.lines
        self.hunk = None

    def _notes(self, pairs: list[_Pair]) -> list[str]:
        """For changed calls that print alike (the difference is past what is shown): where."""
        notes = []
        for x, y in pairs:
            if (
                x is not None
                and y is not None
                and call_text(x, self.max_bytes) == call_text(y, self.max_bytes)
            ):
                notes.append(f"\\ #{x.seq} and #{y.seq}: {_hidden_difference(x, y)}")
        return notes

    def _tally(self, pairs: list[_Pair]) -> None:
        t = self.tally
        for x, y in pairs:
            if x is not None and y is not None:
                t.changed[x.op.name] += 1
            elif x is not None:
                t.removed[x.op.name] += 1
            elif y is not None:
                t.added[y.op.name] += 1

    # -- the words around the hunks ----------------------------------------------------------
    def _headers(self) -> list[str]:
        return [f"--- {_describe(self.a)}", f"+++ {_describe(self.b)}"]

    def _same_line(self, ending: str) -> str:
        aside = (
            "event numbers and durations"
            if self.compare_volatile
            else "event numbers, durations, clock readings, random bytes and stat times"
        )
        return (
            f"The traces {self.a.path} and {self.b.path} are the same: {self.na} calls alike "
            f"({aside} aside), and both guests ended with {ending}."
        )

    def _first_sentence(self, pair: _Pair, at_a: int, at_b: int) -> str:
        where = f"event #{at_a} of {self.a.path.name}, #{at_b} of {self.b.path.name}"
        x, y = pair
        if x is not None and y is not None:
            what = f"{x.op.name} differs in {', '.join(_differing_fields(x, y))}"
        elif x is not None:
            what = f"the first has a call to {x.op.name} that the second has not"
        else:
            assert y is not None
            what = f"the second has a call to {y.op.name} that the first has not"
        return f"The traces part at {where}: {what}."

    def _summary(self, endings: tuple[str, str]) -> list[str]:
        lines = [""]
        if self.first is not None:
            lines.append(self.first)
        t = self.tally
        if self.stopped_at is not None:
            lines += self._rest_by_counts(*self.stopped_at)
        total = sum(t.changed.values()), sum(t.added.values()), sum(t.removed.values())
        if any(total):
            lines.append(
                f"Calls that differ: {total[0]} changed, {total[1]} added, {total[2]} removed"
                + (" (in the part aligned)." if self.stopped_at is not None else ".")
            )
            names = sorted(set(t.changed) | set(t.added) | set(t.removed))
            width = max(len(n) for n in names)
            for name in names:
                parts = [
                    f"{n} {word}"
                    for n, word in (
                        (t.changed[name], "changed"),
                        (t.added[name], "added"),
                        (t.removed[name], "removed"),
                    )
                    if n
                ]
                lines.append(f"  {name:<{width}}  {', '.join(parts)}")
        if endings[0] == endings[1]:
            lines.append(f"Both guests ended with {endings[0]}.")
        else:
            lines.append(f"The first guest ended with {endings[0]}, the second with {endings[1]}.")
        return lines

    def _rest_by_counts(self, i: int, j: int) -> list[str]:
        rest_a = Counter(e.op.name for e in self.a.events(i))
        rest_b = Counter(e.op.name for e in self.b.events(j))
        lines = [
            f"Stopped aligning after {self.shown} differing lines, at event #{i} of the first "
            f"and #{j} of the second; from there on the first has {self.na - i} calls and "
            f"the second {self.nb - j}."
        ]
        more = [
            f"  {name}: {rest_a[name]} in the first, {rest_b[name]} in the second"
            for name in sorted(set(rest_a) | set(rest_b))
            if rest_a[name] != rest_b[name]
        ]
        if more:
            lines.append("Calls per operation from there on, where the counts differ:")
            lines += more
        return lines


def _describe(trace: Trace) -> str:
    g = trace.header.guest
    return f"{trace.path}\t{g.name} {g.sha256[:12]}, {len(trace)} calls, {_ending(trace)}"


def _ending(trace: Trace) -> str:
    footer = trace.footer
    if footer is None:
        return "no ending (the trace ends early)"
    if footer.trap is not None:
        return f"a trap ({footer.trap})"
    if footer.exit_status is None:
        return "no exit status"
    return f"exit status {footer.exit_status}"


def _pair(old: list[Event], new: list[Event]) -> list[_Pair]:
    """The calls of a changed block, paired where both sides call the same operation in turn.

    A pair is a changed call; a call without a partner was removed (or added).
    """
    if len(old) == 1 and len(new) == 1 and old[0].op is new[0].op:
        return [(old[0], new[0])]
    matcher = SequenceMatcher(
        None, [e.op.name for e in old], [e.op.name for e in new], autojunk=False
    )
    pairs: list[_Pair] = []
    for tag, a1, a2, b1, b2 in matcher.get_opcodes():
        if tag == "equal":
            pairs += zip(old[a1:a2], new[b1:b2], strict=True)
        else:
            pairs += [(x, None) for x in old[a1:a2]]
            pairs += [(None, y) for y in new[b1:b2]]
    return pairs


def _differing_fields(x: Event, y: Event) -> list[str]:
    fields = [n for n, p, q in zip(x.op.params, x.args, y.args, strict=True) if p != q]
    if x.result != y.result or x.error != y.error:
        fields.append("outcome")
    return fields or ["nothing shown (only in values left out of the comparison)"]


def _hidden_difference(x: Event, y: Event) -> str:
    pairs = [*zip(x.op.params, x.args, y.args, strict=True), ("outcome", x.result, y.result)]
    for name, p, q in pairs:
        if p == q:
            continue
        if isinstance(p, bytes) and isinstance(q, bytes):
            at = next(
                (k for k, (c, d) in enumerate(zip(p, q, strict=False)) if c != d),
                min(len(p), len(q)),
            )
            start = max(0, at - 8)
            return (
                f"{name} differs from byte {at}: {format_bytes(p[start : at + 16], 64)} "
                f"in the first, {format_bytes(q[start : at + 16], 64)} in the second"
            )
        return f"{name} differs past what is shown: {p!r} in the first, {q!r} in the second"
    return "they differ only in values left out of the comparison"
