"""Where the TUI's calls come from, and the scans it runs over them (UI-free, testable).

An `EventSource` is a `Trace`, or a `CallLog` of a run that is being stepped. Both give random
access and ranges of `Event`s; neither is loaded whole. A `Trace` reads its file with seek+read, so
each thread that reads one needs its own: `reader_for()` opens a second `Trace` on the same file
for a worker, while a `CallLog` (a list that only grows) is shared as it is.

`FilterScan` builds the sorted list of event numbers that match a filter, a block at a time so that
it can report progress, be cancelled, and go on where it stopped when a log grows. `find()` is the
search: the next or previous event that matches, from a given event.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Callable, Iterator
from typing import Protocol

from tracer.render import FilterError, format_event, parse_filter
from tracer.trace import Trace, open_trace
from tracer.trace.reader import Event

BLOCK = 4096


class EventSource(Protocol):
    def __len__(self) -> int: ...

    def __getitem__(self, n: int) -> Event: ...

    def events(self, start: int = 0, stop: int | None = None) -> Iterator[Event]: ...


class CallLog:
    """The calls of a guest being stepped, in order; the guest's thread appends, anyone reads."""

    def __init__(self) -> None:
        self._events: list[Event] = []

    def append(self, event: Event) -> None:
        # list.append is atomic, and readers only look at what they know to be there.
        self._events.append(event)

    def __len__(self) -> int:
        return len(self._events)

    def __getitem__(self, n: int) -> Event:
        return self._events[n]

    def events(self, start: int = 0, stop: int | None = None) -> Iterator[Event]:
        end = len(self._events) if stop is None else min(stop, len(self._events))
        return iter(self._events[max(start, 0) : end])


def reader_for(source: EventSource) -> tuple[EventSource, Callable[[], None]]:
    """A reader of `source` for another thread, and how to close it when done."""
    if isinstance(source, Trace):
        other = open_trace(source.path)
        return other, other.close
    return source, _nothing


def _nothing() -> None:
    return None


class FilterScan:
    """The events of a source that match `expression`, found a block at a time."""

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.predicate = parse_filter(expression)  # FilterError for a bad expression
        self.matches = array("q")  # sorted event numbers; grows while scanning
        self.scanned = 0  # events looked at so far
        self.problem: str | None = None  # why the scan stopped short (a damaged trace)
        self._lock = threading.Lock()

    def run(
        self,
        source: EventSource,
        *,
        cancelled: Callable[[], bool] = lambda: False,
        progress: Callable[[], None] = _nothing,
        block: int = BLOCK,
    ) -> bool:
        """Scan from where the last run stopped to the end of `source`; False if cancelled."""
        with self._lock:
            predicate = self.predicate
            matches = self.matches
            total = len(source)
            while self.scanned < total:
                if cancelled():
                    return False
                stop = min(self.scanned + block, total)
                for event in source.events(self.scanned, stop):
                    if predicate(event):
                        matches.append(event.seq)
                self.scanned = stop
                progress()
            return True

    def done(self, source: EventSource) -> bool:
        return self.scanned >= len(source)


def search_predicate(text: str) -> Callable[[Event], bool]:
    """A search is a filter expression when it is one (`op=read error`), else plain text to find
    in the call's line as `wasitrace show` prints it (case-insensitive)."""
    try:
        return parse_filter(text)
    except FilterError:
        needle = text.lower()
        return lambda event: needle in format_event(event, 64).lower()


def find(
    source: EventSource,
    start: int,
    forward: bool,
    predicate: Callable[[Event], bool],
    *,
    cancelled: Callable[[], bool] = lambda: False,
    block: int = BLOCK,
) -> Event | None:
    """The first event after (or before) event `start` for which `predicate` holds."""
    total = len(source)
    if forward:
        pos = max(start + 1, 0)
        while pos < total:
            if cancelled():
                return None
            for event in source.events(pos, pos + block):
                if predicate(event):
                    return event
            pos += block
        return None
    pos = min(start, total)
    while pos > 0:
        if cancelled():
            return None
        low = max(pos - block, 0)
        chunk: list[Event] = list(source.events(low, pos))
        for i in range(len(chunk) - 1, -1, -1):
            if predicate(chunk[i]):
                return chunk[i]
        pos = low
    return None
