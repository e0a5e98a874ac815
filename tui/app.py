"""The wasitrace TUI: walk through a trace, or step a live run or a replay call by call.

Views (keys 1-5): the calls (a virtual table over the trace, with the selected call in detail
below), statistics per operation, the trace's header, the guest's filesystem as it stood after the
selected call, and the guest's output. A filter narrows the table (its scan runs in a worker and
the table fills as matches are found); search, next error and go-to-event move the cursor.

When a session is being stepped (`--live`, `--replay`), the guest runs in a worker thread and
pauses before each call: space makes one call, `c` runs to the next call matching the filter,
`r` runs to the end, `x` aborts. The table shows the calls made so far.

`run_tui()` is the entry point for the command line; `WasitraceApp.for_trace()` and
`WasitraceApp.for_session()` make the app for tests.
"""

from __future__ import annotations

import textwrap
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import ContentSwitcher, Footer, Input, Static, Tree
from textual.widgets.tree import TreeNode
from textual.worker import get_current_worker

from tracer.backend import DescriptorType
from tracer.render import (
    FilterError,
    compute_stats,
    format_event,
    format_stats,
    format_summary,
)
from tracer.trace import Footer as TraceFooter
from tracer.trace import Trace, TraceError, TraceHeader, open_trace
from tracer.trace.reader import Event
from tui.calllist import CallList
from tui.detail import detail_text
from tui.fstree import FsState, FsTimeline, Node, describe_node
from tui.session import LiveRun, Session, SessionEnd, live_session, replay_session
from tui.source import EventSource, FilterScan, find, reader_for, search_predicate
from tui.stepping import ContinueUntil, Pending, RunToEnd, Step

VIEWS = ("calls", "stats", "info", "tree", "output")
TREE_NODE_LIMIT = 5000
OUTPUT_LIMIT = 256 * 1024
PROGRESS_EVERY_S = 0.1
TICK_S = 0.2


# Keys shown together in the footer under one word, so that all fit in 80 columns.
_VIEWS = Binding.Group("Views", compact=True)
_MATCHES = Binding.Group("Match", compact=True)
_ERRORS = Binding.Group("Error", compact=True)


class GuestPaused(Message):
    """The stepped guest paused before `pending` (posted from the guest's thread)."""

    def __init__(self, pending: Pending) -> None:
        super().__init__()
        self.pending = pending


class WasitraceApp(App[int]):
    """See the module docstring."""

    CSS_PATH = "app.tcss"
    TITLE = "wasitrace"
    # The footer lists the keys; the palette's entry would crowd them out of 80 columns.
    ENABLE_COMMAND_PALETTE = False

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "view('calls')", "Calls", group=_VIEWS),
        Binding("2", "view('stats')", "Statistics", group=_VIEWS),
        Binding("3", "view('info')", "Header", group=_VIEWS),
        Binding("4", "view('tree')", "Files", group=_VIEWS),
        Binding("5", "view('output')", "Output", group=_VIEWS),
        Binding("f", "prompt('filter')", "Filter"),
        Binding("slash", "prompt('search')", "Find"),
        Binding("n", "search(1)", "Next match", group=_MATCHES),
        Binding("N", "search(-1)", "Previous match", group=_MATCHES),
        Binding("e", "error(1)", "Next error", group=_ERRORS),
        Binding("E", "error(-1)", "Previous error", group=_ERRORS),
        Binding("g", "prompt('goto')", "Go to"),
        Binding("space", "step", "Step"),
        Binding("c", "continue", "Cont"),
        Binding("r", "run", "Run"),
        Binding("x", "abort", "Abort"),
        Binding("escape", "cancel_prompt", "Cancel", show=False),
        Binding("question_mark", "toggle_keys", "Keys"),
        Binding("q", "quit", "Quit"),
    ]

    view: reactive[str] = reactive("calls")
    prompt_mode: reactive[str] = reactive("")
    # For a stepped session: "paused", "running" or "ended" (also a CSS class on the step bar).
    step_state: reactive[str] = reactive("")

    def __init__(
        self,
        source: EventSource,
        *,
        name: str,
        header: TraceHeader,
        footer: TraceFooter | None = None,
        damage: str | None = None,
        session: Session | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.trace_name = name
        self.header = header
        self.trace_footer = footer
        self.damage = damage
        self.session = session
        self.selected: Event | None = None
        self.filter: FilterScan | None = None
        self.search_text = ""
        self.pending: Pending | None = None
        self.exit_code = 0
        self._closers: list[Callable[[], None]] = []
        self._timeline: FsTimeline | None = None
        self._detail_timer: Timer | None = None
        self._tree_timer: Timer | None = None
        self._scanning = False
        self._stats_for = -1
        self._output_for = -1
        self._keep_seq: int | None = None  # the call to return to once a new filter is scanned
        self._problem: str | None = None  # why the selected row cannot be read, if it cannot

    # -- making one --------------------------------------------------------------------------
    @classmethod
    def for_trace(cls, trace: Trace, *, close_after: bool = False) -> WasitraceApp:
        """The app over `trace`; `close_after` closes the trace when the app ends."""
        app = cls(
            trace,
            name=trace.path.name,
            header=trace.header,
            footer=trace.footer,
            damage=trace.damage,
        )
        if close_after:
            app._closers.append(trace.close)
        return app

    @staticmethod
    def for_session(session: Session) -> WasitraceApp:
        if session.kind == "live":
            name = f"live {session.header.guest.name}"
        else:
            name = f"replay {session.trace_path.name if session.trace_path else ''}"
        return SteppingApp(session.log, name=name, header=session.header, session=session)

    # -- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="status", markup=False)
        with ContentSwitcher(initial="calls", id="views"):
            with Vertical(id="calls"):
                yield CallList(self.source, id="call-list")
                with VerticalScroll(id="detail"):
                    yield Static(id="detail-text", markup=False)
            with VerticalScroll(id="stats"):
                yield Static("Counting…", id="stats-text", markup=False)
            with VerticalScroll(id="info"):
                yield Static(id="info-text", markup=False)
            with Vertical(id="tree"):
                yield Static(id="tree-title", markup=False)
                yield Tree[str]("filesystem", id="fs-tree")
            with VerticalScroll(id="output"):
                yield Static(id="output-text", markup=False)
        yield Static(id="stepbar", markup=False)
        yield Input(id="prompt")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(CallList).focus()
        self.query_one("#info-text", Static).update(self._info_text())
        if self.session is not None:
            self.add_class("-stepping")
            self.session.on_pause(self._post_paused)
            self.step_state = "running"
            self._run_guest()
            self.set_interval(TICK_S, self._tick)
        self._update_status()
        self._show_detail()

    def _post_paused(self, pending: Pending) -> None:
        # Called in the guest's thread; post_message is safe from there.
        self.post_message(GuestPaused(pending))

    def on_unmount(self) -> None:
        if self.session is not None and self.session.end is None:
            self.session.abort()
        for close in self._closers:
            close()

    @property
    def call_list(self) -> CallList:
        return self.query_one(CallList)

    # -- status line -------------------------------------------------------------------------
    def _update_status(self) -> None:
        total = len(self.source)
        parts = [self.trace_name, f"{total} calls"]
        if self.filter is not None:
            matched = len(self.filter.matches)
            scan = f"filter {self.filter.expression!r}: {matched}"
            if self.filter.problem is not None:
                scan += f" (stopped at a damaged part, #{self.filter.scanned})"
            elif not self.filter.done(self.source) and total:
                scan += f" ({100 * self.filter.scanned // total}%)"
            parts.append(scan)
        if self.selected is not None:
            parts.append(f"#{self.selected.seq}")
        if self.trace_footer is None and self.session is None:
            parts.append("ended early")
        # One line whatever it says, so no layout pass is needed.
        self.query_one("#status", Static).update(" · ".join(parts), layout=False)

    # -- selection ---------------------------------------------------------------------------
    @on(CallList.Highlighted)
    def _highlighted(self, message: CallList.Highlighted) -> None:
        self.selected = message.event
        self._problem = message.problem
        self._update_status()
        # Held keys move the cursor faster than a large hexdump renders: draw once it rests.
        if self._detail_timer is not None:
            self._detail_timer.stop()
        self._detail_timer = self.set_timer(0.03, self._show_detail)
        if self.view == "tree":
            self._schedule_tree()

    def _show_detail(self) -> None:
        text: Text | str
        if self._problem is not None:
            # The pane does not wrap (see detail_text), so the sentence is wrapped here.
            wrapped = textwrap.fill(self._problem, 76)
            text = Text(f"This call cannot be read.\n{wrapped}", style="red")
        elif self.selected is None:
            text = "No call selected." if self.call_list.row_count else self._empty_text()
        else:
            text = detail_text(self.selected)
        self.query_one("#detail-text", Static).update(text)
        self.query_one("#detail", VerticalScroll).scroll_home(animate=False)

    def _empty_text(self) -> str:
        if self.session is not None:
            return "No calls yet: the guest is paused before its first call (space to step)."
        if self.filter is not None:
            return "No call matches the filter."
        return "This trace holds no calls."

    # -- views -------------------------------------------------------------------------------
    def action_toggle_keys(self) -> None:
        """Show (or hide) the panel that lists every key, the grouped and hidden ones too."""
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def action_view(self, view: str) -> None:
        if view in VIEWS:
            self.view = view

    def watch_view(self, view: str) -> None:
        self.query_one(ContentSwitcher).current = view
        if view == "calls":
            self.call_list.focus()
        elif view == "stats":
            self.query_one("#stats", VerticalScroll).focus()
            self._refresh_stats()
        elif view == "info":
            self.query_one("#info", VerticalScroll).focus()
            self.query_one("#info-text", Static).update(self._info_text())
        elif view == "tree":
            self.query_one("#fs-tree", Tree).focus()
            self._schedule_tree()
        elif view == "output":
            self.query_one("#output", VerticalScroll).focus()
            self._refresh_output()

    def _info_text(self) -> Text:
        footer = self.trace_footer
        if self.session is not None:
            # A run in progress has no footer yet; summarise it as one that is still open.
            end = self.session.end
            footer = TraceFooter(
                end.exit_status if end else None,
                len(self.source),
                {},
                {},
                (),
                end.trap if end else None,
            )
        lines = format_summary(self.header, footer, len(self.source), self.damage)
        out = Text("\n".join(lines))
        out.append("\n")
        if self.header.env:
            out.append("\nenvironment\n", style="bold")
            for key, value in self.header.env:
                out.append(f"  {key}={value}\n")
        if footer is not None and footer.trap is not None:
            out.append(f"\ntrap       {footer.trap}\n", style="bold red")
        if self.session is not None:
            where = self.session.trace_path
            if self.session.kind == "live" and where is not None:
                out.append(f"\nrecording  {where}\n")
            end = self.session.end
            out.append(f"state      {end.describe() if end else self.step_state}\n")
            if end is not None and end.divergence is not None:
                out.append("\n" + end.divergence + "\n", style="red")
        return out

    # statistics: counted in a worker over the whole source, again only if it grew
    def _refresh_stats(self) -> None:
        if self._stats_for != len(self.source):
            self._count_stats()

    @work(thread=True, exclusive=True, group="stats")
    def _count_stats(self) -> None:
        worker = get_current_worker()
        reader, close = reader_for(self.source)
        try:
            total = len(reader)
            events = _progress(
                reader,
                lambda done: self.call_from_thread(
                    self.query_one("#stats-text", Static).update,
                    f"Counting… {100 * done // max(total, 1)}%",
                ),
                lambda: worker.is_cancelled,
            )
            stats = compute_stats(events)
            text = "\n".join(_name_first(format_stats(stats))) if stats else "No calls yet."
        except TraceError as exc:
            text = f"The statistics stop at a damaged part of the trace: {exc}"
            total = -1
        finally:
            close()
        if not worker.is_cancelled:
            self.call_from_thread(self._stats_done, text, total)

    def _stats_done(self, text: str, total: int) -> None:
        self._stats_for = total
        self.query_one("#stats-text", Static).update(Text(text, no_wrap=True))

    # the guest's output: its write_stdout / write_stderr data, the last OUTPUT_LIMIT bytes
    def _refresh_output(self) -> None:
        if self._output_for != len(self.source):
            self._collect_output()

    @work(thread=True, exclusive=True, group="output")
    def _collect_output(self) -> None:
        worker = get_current_worker()
        reader, close = reader_for(self.source)
        pieces: deque[tuple[bytes, bool]] = deque()
        size = 0
        try:
            total = len(reader)
            for event in reader.events(0, total):
                if worker.is_cancelled:
                    return
                if event.op.name in ("write_stdout", "write_stderr") and event.error is None:
                    pieces.append((event.args[0], event.op.name == "write_stderr"))
                    size += len(event.args[0])
                    while size > OUTPUT_LIMIT and len(pieces) > 1:
                        size -= len(pieces.popleft()[0])
        except TraceError:
            total = -1
        finally:
            close()
        text = Text()
        for data, is_stderr in pieces:
            text.append(data.decode("utf-8", "replace"), style="red" if is_stderr else "")
        if not pieces:
            text = Text("The guest wrote nothing to stdout or stderr.", style="dim")
        self.call_from_thread(self._output_done, text, total)

    def _output_done(self, text: Text, total: int) -> None:
        self._output_for = total
        self.query_one("#output-text", Static).update(text)

    # the filesystem tree at the selected call
    def _schedule_tree(self) -> None:
        if self._tree_timer is not None:
            self._tree_timer.stop()
        self._tree_timer = self.set_timer(0.05, self._request_tree)

    def _request_tree(self) -> None:
        if self._timeline is None:
            reader, close = reader_for(self.source)
            self._closers.append(close)
            preopens = [p.guest_path for p in self.header.preopens]
            self._timeline = FsTimeline(reader, preopens)
        self._build_tree(self.selected)

    @work(thread=True, exclusive=True, group="tree")
    def _build_tree(self, event: Event | None) -> None:
        timeline = self._timeline
        assert timeline is not None
        worker = get_current_worker()
        title = self.query_one("#tree-title", Static)
        last = [time.monotonic()]

        def progress(done: int, to_do: int) -> None:
            # Rebuilding from far back takes a while in a long trace: say how far it got.
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_S:
                last[0] = now
                text = f"Rebuilding the filesystem from the trace… {100 * done // to_do}%"
                self.call_from_thread(title.update, text)

        try:
            if event is None:
                before = timeline.state_at(len(self.source) - 1, progress)
                touched: list[str] = []
                after = before
            else:
                before = timeline.state_at(event.seq - 1, progress)
                touched = before.paths_of(event)
                after = before.copy()
                after.apply(event)
        except TraceError as exc:
            self.call_from_thread(self.notify, str(exc), severity="error")
            return
        if not worker.is_cancelled:
            self.call_from_thread(self._show_tree, event, after, touched)

    def _show_tree(self, event: Event | None, state: FsState, touched: list[str]) -> None:
        if event is None:
            title = "The filesystem at the end of the trace"
        else:
            title = f"The filesystem after {format_event(event, 16)}"
        self.query_one("#tree-title", Static).update(Text(title, no_wrap=True, overflow="ellipsis"))
        tree: Tree[str] = self.query_one("#fs-tree", Tree)
        tree.clear()
        tree.root.set_label(Text("guest filesystem", style="bold"))
        children = state.children()
        open_on = state.open_on()
        budget = [TREE_NODE_LIMIT]

        def add(parent: TreeNode[str], path: str, label_name: str) -> None:
            if budget[0] <= 0:
                return
            budget[0] -= 1
            node = state.nodes.get(path)
            label = _tree_label(label_name, node, open_on.get(path, ()), path in touched)
            kids = children.get(path, [])
            if kids or (node is not None and node.type is DescriptorType.DIRECTORY):
                branch = parent.add(label, data=path, expand=True)
                for kid in kids:
                    add(branch, kid, kid.rsplit("/", 1)[-1])
                if budget[0] <= 0 and kids:
                    branch.add_leaf(Text("… more not shown", style="dim"))
            else:
                parent.add_leaf(label, data=path)

        for root in state.roots:
            add(tree.root, root, root)
        # Descriptors still open on paths that are gone (unlinked or removed while open).
        gone = {p: fds for p, fds in open_on.items() if p not in state.nodes}
        if gone:
            branch = tree.root.add(Text("open but removed", style="italic"), expand=True)
            for path, fds in gone.items():
                branch.add_leaf(_tree_label(path, None, fds, path in touched), data=path)
        tree.root.expand()

    # -- filter, search, go to -----------------------------------------------------------------
    def action_prompt(self, mode: str) -> None:
        prompt = self.query_one("#prompt", Input)
        placeholders = {
            "filter": "filter: op=open_at,read path=*.txt fd=5 seq=10-20 error ok (empty: none)",
            "search": "find: a filter expression, or text in the call's line",
            "goto": "go to event number",
        }
        self.prompt_mode = mode
        prompt.placeholder = placeholders[mode]
        if mode == "filter":
            prompt.value = self.filter.expression if self.filter is not None else ""
        elif mode == "search":
            prompt.value = self.search_text
        else:
            prompt.value = ""
        if self.view != "calls":
            self.view = "calls"
        prompt.focus()

    def watch_prompt_mode(self, mode: str) -> None:
        self.set_class(bool(mode), "-prompting")

    def action_cancel_prompt(self) -> None:
        if self.prompt_mode:
            self.prompt_mode = ""
            self.call_list.focus()

    @on(Input.Submitted, "#prompt")
    def _prompt_submitted(self, message: Input.Submitted) -> None:
        mode, value = self.prompt_mode, message.value.strip()
        self.prompt_mode = ""
        self.call_list.focus()
        if mode == "filter":
            self.set_filter(value)
        elif mode == "search":
            self.search_text = value
            if value:
                self.action_search(1)
        elif mode == "goto":
            self.go_to(value)

    def set_filter(self, expression: str) -> None:
        """Show only the calls matching `expression` (all of them when it is empty)."""
        keep = self.selected.seq if self.selected is not None else 0
        calls = self.call_list
        if not expression:
            self.filter = None
            calls.show(None)
            calls.go_to_seq(keep)
            self._update_status()
            return
        try:
            scan = FilterScan(expression)
        except FilterError as exc:
            self.notify(str(exc), title="Filter not understood", severity="error", timeout=8)
            return
        self.filter = scan
        calls.show(scan.matches)
        self._keep_seq = keep
        self._scan_filter(scan)
        self._update_status()

    @work(thread=True, exclusive=True, group="filter")
    def _scan_filter(self, scan: FilterScan) -> None:
        worker = get_current_worker()
        reader, close = reader_for(self.source)
        last = [time.monotonic()]

        def progress() -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_S:
                last[0] = now
                self.call_from_thread(self._filter_progress, scan, False)

        self._scanning = True
        try:
            finished = scan.run(reader, cancelled=lambda: worker.is_cancelled, progress=progress)
        except TraceError as exc:
            scan.problem = str(exc)
            self.call_from_thread(self.notify, str(exc), severity="error")
            finished = True
        finally:
            close()
            self._scanning = False
        if finished and not worker.is_cancelled:
            self.call_from_thread(self._filter_progress, scan, True)

    def _filter_progress(self, scan: FilterScan, finished: bool) -> None:
        if scan is not self.filter:
            return
        calls = self.call_list
        at_end = calls.cursor >= calls.row_count - 1
        calls.sync()
        if finished and self._keep_seq is not None:
            calls.go_to_seq(self._keep_seq)
            self._keep_seq = None
        elif at_end and self.session is not None:
            calls.cursor = calls.row_count - 1  # a stepped run: follow its latest call
        self._update_status()

    def action_search(self, direction: int) -> None:
        if not self.search_text:
            self.action_prompt("search")
            return
        self._seek(search_predicate(self.search_text), direction > 0, f"{self.search_text!r}")

    def action_error(self, direction: int) -> None:
        self._seek(lambda event: event.error is not None, direction > 0, "a failed call")

    def _seek(self, predicate: Callable[[Event], bool], forward: bool, what: str) -> None:
        if self.filter is not None:
            flt = self.filter.predicate
            wanted = predicate

            def predicate(event: Event) -> bool:
                return flt(event) and wanted(event)

        start = self.selected.seq if self.selected is not None else (-1 if forward else 0)
        self._find(predicate, start, forward, what)

    @work(thread=True, exclusive=True, group="find")
    def _find(
        self, predicate: Callable[[Event], bool], start: int, forward: bool, what: str
    ) -> None:
        worker = get_current_worker()
        reader, close = reader_for(self.source)
        try:
            found = find(reader, start, forward, predicate, cancelled=lambda: worker.is_cancelled)
        except TraceError as exc:
            self.call_from_thread(self.notify, str(exc), severity="error")
            return
        finally:
            close()
        if worker.is_cancelled:
            return
        if found is None:
            where = "after" if forward else "before"
            self.call_from_thread(self.notify, f"No {what} {where} this call.", timeout=3)
        else:
            self.call_from_thread(self.call_list.go_to_seq, found.seq)

    def go_to(self, text: str) -> None:
        try:
            seq = int(text.lstrip("#"))
        except ValueError:
            self.notify(f"{text!r} is not an event number.", severity="error")
            return
        calls = self.call_list
        if seq >= len(self.source):
            self.notify(f"The last call is #{len(self.source) - 1}.", timeout=3)
        calls.go_to_seq(seq)
        if calls.row_count and self.filter is not None:
            shown = calls.seq_at(calls.cursor)
            if shown != seq:
                self.notify(f"#{seq} is filtered out; showing #{shown}.", timeout=3)

    # -- stepping ------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("step", "continue", "run", "abort"):
            if self.session is None:
                return False
            if action == "abort":
                return self.step_state != "ended"
            if action == "run":
                return self.step_state != "ended" or None
            return True if self.step_state == "paused" else None
        return True

    def watch_step_state(self, old: str, new: str) -> None:
        bar = self.query_one("#stepbar", Static)
        if old:
            bar.remove_class(f"-{old}")
        if new:
            bar.add_class(f"-{new}")
        self.refresh_bindings()
        self._update_stepbar()

    def _update_stepbar(self) -> None:
        if self.session is None:
            return
        bar = self.query_one("#stepbar", Static)
        if self.step_state == "paused" and self.pending is not None:
            text = f"paused before {self.pending.describe()}"
        elif self.step_state == "running":
            text = f"running… {len(self.source)} calls made"
        elif self.session.end is not None:
            text = self.session.end.describe()
        else:
            return
        bar.update(Text(text, no_wrap=True, overflow="ellipsis"), layout=False)

    @work(thread=True, exclusive=True, group="guest")
    def _run_guest(self) -> None:
        assert self.session is not None
        end = self.session.run()
        if self.is_running:
            # Not after quitting, which stops the guest and needs no news of it.
            self.call_from_thread(self._guest_ended, end)

    def _guest_ended(self, end: SessionEnd) -> None:
        self.exit_code = end.exit_code
        self.pending = None
        self.step_state = "ended"
        self._follow()
        self.query_one("#info-text", Static).update(self._info_text())
        if end.divergence is not None:
            first = end.divergence.splitlines()[0]
            self.notify(
                f"{first} The whole report is in the header view (3).",
                title="The replay departed from the trace",
                severity="error",
                timeout=30,
            )
        elif end.failure is not None or end.cannot_run is not None:
            self.notify(end.describe(), severity="error", timeout=30)

    @on(GuestPaused)
    def _guest_paused(self, message: GuestPaused) -> None:
        self.pending = message.pending
        self.step_state = "paused"
        self._follow()
        self._update_stepbar()

    def _follow(self) -> None:
        """Show the calls made so far, with the cursor on the last one."""
        calls = self.call_list
        at_end = calls.cursor >= calls.row_count - 1
        if self.filter is not None and not self._scanning:
            self._scan_filter(self.filter)
        calls.sync()
        if at_end:
            calls.cursor = calls.row_count - 1
        self._update_status()

    def _tick(self) -> None:
        if self.step_state == "running":
            self._follow()
            self._update_stepbar()

    def action_step(self) -> None:
        if self.session is not None and self.step_state == "paused":
            self.step_state = "running"
            self.session.stepper.command(Step())

    def action_continue(self) -> None:
        if self.session is not None and self.step_state == "paused":
            predicate = self.filter.predicate if self.filter is not None else None
            self.step_state = "running"
            self.session.stepper.command(ContinueUntil(predicate or (lambda event: True)))

    def action_run(self) -> None:
        if self.session is not None and self.step_state != "ended":
            self.step_state = "running"
            self.session.stepper.command(RunToEnd())

    def action_abort(self) -> None:
        if self.session is not None and self.step_state != "ended":
            self.session.abort()

    async def action_quit(self) -> None:
        if self.session is not None and self.session.end is None:
            self.session.abort()
            self.exit_code = SessionEnd(aborted=True).exit_code
        self.exit(self.exit_code)


class SteppingApp(WasitraceApp):
    """The app for a stepped session: the stepping keys take the footer's room from searching
    (whose keys still work, and are listed by `?`)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "search(1)", "Next match", show=False),
        Binding("N", "search(-1)", "Previous match", show=False),
        Binding("e", "error(1)", "Next error", show=False),
        Binding("E", "error(-1)", "Previous error", show=False),
        Binding("g", "prompt('goto')", "Go to", show=False),
        Binding("question_mark", "toggle_keys", "Keys", show=False),
    ]


def _progress(
    source: EventSource,
    report: Callable[[int], None],
    cancelled: Callable[[], bool],
    block: int = 65536,
) -> Iterator[Event]:
    """Every event of `source`, a block at a time, reporting how many were read after each
    block; stops early when `cancelled()`."""
    total = len(source)
    for start in range(0, total, block):
        if cancelled():
            return
        yield from source.events(start, start + block)
        report(min(start + block, total))


def _name_first(lines: list[str]) -> list[str]:
    """`format_stats`'s table with its last column, the operation, moved to the front.

    The table is wider than 80 columns; with the name first, what is cut off at the right of a
    small terminal is a number (the view scrolls sideways to it), not which operation a row is.
    """
    at = lines[0].rfind("operation")
    if at < 0:
        return lines
    width = max(len(line[at:].rstrip()) for line in lines)
    return [line[at:].rstrip().ljust(width) + "  " + line[:at].rstrip() for line in lines]


def _tree_label(name: str, node: Node | None, fds: Sequence[int], touched: bool) -> Text:
    """`notes/  ` / `a.txt  123 bytes  fd 4`; the paths the selected call works on reversed."""
    label = Text()
    style = "reverse" if touched else ""
    if node is not None and node.type is DescriptorType.DIRECTORY:
        label.append(name.rstrip("/") + "/", style=f"bold {style}".strip())
    else:
        label.append(name, style=style)
    if node is not None:
        described = describe_node(node)
        if described:
            label.append(f"  {described}", style="dim")
    if fds:
        label.append("  " + " ".join(f"fd {fd}" for fd in fds), style="bold yellow")
    return label


def run_tui(
    trace_path: Path | None = None,
    *,
    replay: bool = False,
    guest: Path | None = None,
    live: LiveRun | None = None,
) -> int:
    """Run the TUI in this terminal; returns the exit status for `wasitrace tui`.

    * `run_tui(TRACE)`: inspect a trace (exit status 0).
    * `run_tui(TRACE, replay=True, guest=GUEST)`: step a replay of TRACE (`guest` defaults to
      the recorded path, then the trace's directory).
    * `run_tui(live=LiveRun(...))`: step a live run while it records.

    For a stepped run the exit status is the guest's own, or 130 (aborted), 134 (trapped),
    135 (departed from the trace), 126 (could not be run). Raises `tracer.trace.TraceError` for a
    trace that cannot be read and `tracer.runner.GuestError` for a guest that cannot be loaded,
    before the screen is taken over.
    """
    if live is not None:
        app = WasitraceApp.for_session(live_session(live))
    elif trace_path is None:
        raise ValueError("run_tui needs a trace, or a live run")
    elif replay:
        app = WasitraceApp.for_session(replay_session(trace_path, guest))
    else:
        app = WasitraceApp.for_trace(open_trace(trace_path), close_after=True)
    status = app.run()
    return status if status is not None else app.exit_code
