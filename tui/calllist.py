"""`CallList`: the table of calls, a virtual list that reads only the rows on screen.

It never holds the trace: it knows how many rows there are (all events, or the matches of a
filter as an array of event numbers) and, when a line is drawn, fetches that row's event through
the source, a block at a time, into a small cache. Scrolling a million events costs the few
chunks on screen. Line 0 is the column header; it stays put while the rows scroll beneath it.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import OrderedDict
from typing import ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tracer.render import format_duration
from tracer.trace import TraceError
from tracer.trace.reader import Event
from tui.detail import call_text, outcome_text
from tui.source import EventSource

CACHE_ROWS = 2048
FETCH = 64  # rows fetched together on a miss


class CallList(ScrollView, can_focus=True):
    """The calls, one a row: number, call, outcome, duration. Errors are marked."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "call-list--header",
        "call-list--cursor",
        "call-list--error",
        "call-list--number",
        "call-list--time",
    }

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
    ]

    cursor: reactive[int] = reactive(0, always_update=True)

    class Highlighted(Message):
        """The cursor moved to `row`, which shows `event`: None when there are no rows, or when
        the row cannot be read (then `problem` says why)."""

        def __init__(self, row: int, event: Event | None, problem: str | None = None) -> None:
            super().__init__()
            self.row = row
            self.event = event
            self.problem = problem

    def __init__(self, source: EventSource, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.source = source
        self.matches: array[int] | None = None
        self._count = len(source)
        self._cache: OrderedDict[int, Event] = OrderedDict()

    # -- rows ------------------------------------------------------------------------------------
    @property
    def row_count(self) -> int:
        return self._count

    def seq_at(self, row: int) -> int:
        return row if self.matches is None else self.matches[row]

    def row_of(self, seq: int) -> int:
        """The row showing event `seq`, or the first after it (the last row if none is)."""
        row = seq if self.matches is None else bisect_left(self.matches, seq)
        return max(0, min(row, self._count - 1))

    def event_at(self, row: int) -> Event | None:
        if not 0 <= row < self._count:
            return None
        seq = self.seq_at(row)
        cached = self._cache.get(seq)
        if cached is not None:
            return cached
        self._fetch(row)
        return self._cache.get(seq)

    def _fetch(self, row: int) -> None:
        start = row - row % FETCH
        stop = min(start + FETCH, self._count)
        if self.matches is None:
            fetched = list(self.source.events(start, stop))
        else:
            fetched = [self.source[self.matches[r]] for r in range(start, stop)]
        for event in fetched:
            self._cache[event.seq] = event
        while len(self._cache) > CACHE_ROWS:
            self._cache.popitem(last=False)

    def show(self, matches: array[int] | None) -> None:
        """Show every event (None), or the events numbered in `matches`."""
        self.matches = matches
        self.sync()

    def sync(self) -> None:
        """Take in rows that appeared since (a growing log, or a filter scan going on)."""
        count = len(self.source) if self.matches is None else len(self.matches)
        was_empty = self._count == 0
        self._count = count
        self.virtual_size = Size(self.scrollable_content_region.width, count + 1)
        if self.cursor >= count and count:
            self.cursor = count - 1
        elif was_empty and count:
            self.cursor = 0  # announce the first row once there is one
        self._reveal(self.cursor)
        self.refresh()

    def forget(self) -> None:
        """Drop cached rows (after the source's events may have changed, e.g. a new filter)."""
        self._cache.clear()

    # -- cursor ----------------------------------------------------------------------------------
    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, self._count - 1))

    def watch_cursor(self, row: int) -> None:
        self._reveal(row)
        self.refresh()
        try:
            event = self.event_at(row)
        except TraceError as exc:
            self.post_message(self.Highlighted(row, None, str(exc)))
        else:
            self.post_message(self.Highlighted(row, event))

    def _reveal(self, row: int) -> None:
        """Scroll as little as needed to have `row` on screen."""
        page = self._page()
        top = round(self.scroll_offset.y)
        if row < top:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif row >= top + page:
            self.scroll_to(y=row - page + 1, animate=False, immediate=True)

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def action_move(self, delta: int) -> None:
        self.cursor += delta

    def action_page(self, direction: int) -> None:
        page = self._page()
        self.scroll_to(y=self.scroll_offset.y + direction * page, animate=False, immediate=True)
        self.cursor += direction * page

    def action_first(self) -> None:
        self.cursor = 0

    def action_last(self) -> None:
        self.cursor = self._count - 1

    def go_to_seq(self, seq: int) -> None:
        self.cursor = self.row_of(seq)

    def on_mount(self) -> None:
        self.sync()

    def on_resize(self) -> None:
        self.sync()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # -- drawing ---------------------------------------------------------------------------------
    def _widths(self, width: int) -> tuple[int, int, int, int]:
        number = max(3, len(str(max(len(self.source) - 1, 0))))
        duration = 9
        outcome = max(10, min(24, width // 4))
        call = max(8, width - number - outcome - duration - 3)
        return number, call, outcome, duration

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            style = base + self.get_component_rich_style("call-list--header")
            return self._strip(("#", "call", "outcome", "time"), width, style, style, style)
        row = round(self.scroll_offset.y) + y - 1
        if row >= self._count:
            return Strip.blank(width, base)
        try:
            event = self.event_at(row)
        except TraceError:
            # The detail pane says what is wrong with it; the row says that something is.
            style = base + self.get_component_rich_style("call-list--error")
            if row == self.cursor:
                style += self.get_component_rich_style("call-list--cursor")
            cells = (str(self.seq_at(row)), "(unreadable: the trace is damaged here)", "", "")
            return self._strip(cells, width, style, style, style)
        if event is None:
            return Strip.blank(width, base)
        style = base
        if event.error is not None:
            style += self.get_component_rich_style("call-list--error")
        if row == self.cursor:
            style += self.get_component_rich_style("call-list--cursor")
            if not self.has_focus:
                style += Style(dim=True)
        number_style = style + self.get_component_rich_style("call-list--number", partial=True)
        time_style = style + self.get_component_rich_style("call-list--time", partial=True)
        cells = (
            str(event.seq),
            call_text(event),
            outcome_text(event),
            format_duration(event.duration_ns),
        )
        return self._strip(cells, width, style, number_style, time_style)

    def _strip(
        self,
        cells: tuple[str, str, str, str],
        width: int,
        style: Style,
        number_style: Style,
        time_style: Style,
    ) -> Strip:
        number_w, call_w, outcome_w, duration_w = self._widths(width)
        number, call, outcome, duration = cells
        segments = [
            Segment(number.rjust(number_w)[-number_w:] + " ", number_style),
            Segment(_fit(call, call_w) + " ", style),
            Segment(_fit(outcome, outcome_w) + " ", style),
            Segment(duration.rjust(duration_w)[:duration_w], time_style),
        ]
        return Strip(segments).adjust_cell_length(width, style)


def _fit(text: str, width: int) -> str:
    """`text` padded or cut to `width` cells, a cut marked with an ellipsis."""
    if cell_len(text) > width:
        return set_cell_size(text, width - 1) + "…"
    return set_cell_size(text, width)
