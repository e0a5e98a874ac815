"""The TUI driven through Textual's pilot: navigation, filter, search, jumps, views, stepping."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Static, Tree
from textual.widgets.tree import TreeNode

from tracer.backend import Clock, DescriptorFlags, DescriptorType, DirectoryEntry, OpenFlags
from tracer.backends.memory import MemoryBackend
from tracer.errors import ErrorCode
from tracer.operations import BY_NAME
from tracer.render import parse_filter
from tracer.runner import GuestError
from tracer.sandbox import Mount
from tracer.trace import GuestInfo, Preopen, TraceError, TraceHeader, TraceWriter, open_trace
from tui import session as tui_session
from tui.app import WasitraceApp, run_tui
from tui.calllist import CallList
from tui.session import LiveRun, live_session, replay_session

REPO = Path(__file__).resolve().parent.parent
CATALOG = REPO / "examples" / "catalog.wasm"
DATA = REPO / "examples" / "data"
SIZE = (80, 24)

HEADER = TraceHeader(
    guest=GuestInfo("demo.wasm", 4096, "cd" * 32, "preview1", "guests/demo.wasm"),
    argv=("demo.wasm", "--go"),
    env=(("LANG", "C"),),
    preopens=(Preopen("/work", "memory", "memory"),),
    wasmtime_version="50.0.1",
    wasitrace_version="0.1.0",
    recorded_at="2024-05-01T12:00:00+00:00",
)
LOOPS = 300  # 3 to 5 calls each: enough events for several chunks and pages


def write_sample_trace(path: Path, loops: int = LOOPS) -> Path:
    """A deterministic trace: a directory listing, files written in a loop, failed stats every
    7th turn, a line of output every 10th, then a rename, an unlink and exit."""
    writer = TraceWriter(path, HEADER)
    micro = [0]

    def rec(op: str, args: tuple[Any, ...], result: Any = None, error: ErrorCode | None = None):
        micro[0] = micro[0] % 9 + 1
        writer.record(BY_NAME[op].code, args, result, error, micro[0] * 1000)

    create = OpenFlags.CREATE | OpenFlags.TRUNCATE
    rec("preopens", (), [(3, "/work")])
    rec("arguments", (), ["demo.wasm", "--go"])
    rec("environment", (), [("LANG", "C")])
    rec("clock_now", (Clock.REALTIME,), 1_714_564_800_000_000_000)
    rec("open_at", (3, 0, ".", OpenFlags.DIRECTORY, DescriptorFlags.READ), 4)
    entries = [
        DirectoryEntry(DescriptorType.REGULAR_FILE, "input.txt", 10),
        DirectoryEntry(DescriptorType.DIRECTORY, "out", 11),
    ]
    rec("read_directory", (4,), entries)
    rec("close", (4,))
    rec("open_at", (3, 0, "missing.txt", 0, DescriptorFlags.READ), error=ErrorCode.NO_ENTRY)
    for i in range(loops):
        data = f"record {i}: ".encode() + bytes(range(i % 7, i % 7 + 40))
        rec("open_at", (3, 0, f"out/file{i % 20}.txt", create, DescriptorFlags.WRITE), 5)
        rec("write", (5, data, 0), len(data))
        rec("close", (5,))
        if i % 7 == 3:
            rec("stat_at", (3, 0, f"out/nope{i}.txt"), error=ErrorCode.NO_ENTRY)
        if i % 10 == 0:
            rec("write_stdout", (f"line {i}\n".encode(),))
    rec("rename_at", (3, "out/file0.txt", 3, "out/final.txt"))
    rec("unlink_file_at", (3, "out/file1.txt"))
    rec("exit", (0,))
    writer.close(0)
    return path


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample_trace(tmp_path_factory.mktemp("tui") / "sample.wtrace")


def in_loop(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Runs an async test in a fresh event loop (the suite has no asyncio plugin)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


def make_app(path: Path) -> WasitraceApp:
    return WasitraceApp.for_trace(open_trace(path))


async def settle(app: WasitraceApp, pilot: Any) -> None:
    """Let workers finish and their results reach the screen."""
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def until(pilot: Any, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("the condition did not come true in time")
        await pilot.pause(0.02)


async def answer(pilot: Any, key: str, text: str) -> None:
    """Open a prompt with `key`, give it `text` and submit it (typing each key costs time)."""
    await pilot.press(key)
    pilot.app.query_one("#prompt", Input).value = text
    await pilot.press("enter")


def selected(app: WasitraceApp) -> int:
    assert app.selected is not None
    return app.selected.seq


def text_of(app: WasitraceApp, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


def all_events(path: Path) -> list[Any]:
    with open_trace(path) as trace:
        return list(trace)


# -- navigation -------------------------------------------------------------------------------
@in_loop
async def test_the_cursor_moves_by_row_page_and_to_either_end(sample: Path) -> None:
    app = make_app(sample)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert selected(app) == 0
        await pilot.press("down", "down")
        assert selected(app) == 2
        await pilot.press("pagedown")
        page = app.query_one(CallList).scrollable_content_region.height - 1
        assert selected(app) == 2 + page
        await pilot.press("end")
        assert selected(app) == len(all_events(sample)) - 1
        await pilot.press("up", "home")
        assert selected(app) == 0


@in_loop
async def test_the_rows_on_screen_follow_the_cursor(sample: Path) -> None:
    app = make_app(sample)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("end")
        await pilot.pause()
        calls = app.query_one(CallList)
        last_line = calls.render_line(calls.scrollable_content_region.height - 1).text
        assert last_line.split()[0] == str(len(all_events(sample)) - 1)
        assert calls.render_line(0).text.split()[:2] == ["#", "call"]


@in_loop
async def test_the_detail_pane_shows_every_argument_and_data_as_a_hexdump(sample: Path) -> None:
    app = make_app(sample)
    async with app.run_test(size=SIZE) as pilot:
        await answer(pilot, "g", "9")  # #9 is the first write
        await pilot.pause(0.1)
        detail = text_of(app, "#detail-text")
        assert "#9 write" in detail
        assert "offset  0" in detail
        assert "0000  72 65 63 6f 72 64 20 30" in detail  # "record 0" in hex, then as text
        assert "record 0: ." in detail
        assert "result  50" in detail


# -- filter, search, jumps --------------------------------------------------------------------
@in_loop
async def test_a_filter_shows_only_the_matching_calls(sample: Path) -> None:
    expected = [e.seq for e in all_events(sample) if parse_filter("op=stat_at error")(e)]
    app = make_app(sample)
    async with app.run_test(size=SIZE) as pilot:
        await answer(pilot, "f", "op=stat_at error")
        await settle(app, pilot)
        calls = app.query_one(CallList)
        assert calls.row_count == len(expected)
        assert [calls.seq_at(r) for r in range(calls.row_count)] == expected
        await pilot.press("down")
        assert selected(app) == expected[1]
        assert "op=stat_at error" in text_of(app, "#status")
        # An empty filter shows every call again, keeping the selected one.
        await answer(pilot, "f", "")
        await settle(app, pilot)
        assert calls.row_count == len(all_events(sample))
        assert selected(app) == expected[1]


@in_loop
async def test_a_filter_that_does_not_parse_is_reported_and_changes_nothing(sample: Path) -> None:
    app = make_app(sample)
    async with app.run_test(size=SIZE) as pilot:
        await answer(pilot, "f", "op=nosuchop")
        await settle(app, pilot)
        assert app.filter is None
        assert any("matches no operation" in str(n.message) for n in app._notifications)


@in_loop
async def test_search_finds_the_next_and_previous_match(sample: Path) -> None:
    writes = [e.seq for e in all_events(sample) if e.op.name == "write_stdout"]
    app = make_app(sample)
    async with app.run_test(size=SIZE) as pilot:
        await answer(pilot, "slash", "line 1")  # plain text, as in the call's line
        await settle(app, pilot)
        assert selected(app) == writes[1]  # "line 10"
        await pilot.press("n")
        await settle(app, pilot)
        assert selected(app) == writes[10]  # "line 100"
        await pilot.press("N")
        await settle(app, pilot)
        assert selected(app) == writes[1]


@in_loop
async def test_jump_to_the_next_and_previous_error(sample: Path) -> None:
    errors = [e.seq for e in all_events(sample) if e.error is not None]
    app = make_app(sample)
    async with app.run_test(size=SIZE) as pilot:
        for expected in errors[:3]:
            await pilot.press("e")
            await settle(app, pilot)
            assert selected(app) == expected
        await pilot.press("E")
        await settle(app, pilot)
        assert selected(app) == errors[1]


@in_loop
async def test_go_to_an_event_number_and_to_the_nearest_one_under_a_filter(sample: Path) -> None:
    app = make_app(sample)
    async with app.run_test(size=SIZE) as pilot:
        await answer(pilot, "g", "700")
        await pilot.pause()
        assert selected(app) == 700
        await answer(pilot, "f", "op=close")
        await settle(app, pilot)
        await answer(pilot, "g", "701")
        await pilot.pause()
        closes = [e.seq for e in all_events(sample) if e.op.name == "close" and e.seq >= 701]
        assert selected(app) == closes[0]


# -- the other views --------------------------------------------------------------------------
def tree_labels(node: TreeNode[str], depth: int = 0) -> list[str]:
    out = []
    for child in node.children:
        out.append("  " * depth + str(child.label))
        out.extend(tree_labels(child, depth + 1))
    return out


@in_loop
async def test_the_tree_shows_the_filesystem_as_it_stood_at_the_selected_call(
    sample: Path,
) -> None:
    app = make_app(sample)
    async with app.run_test(size=SIZE) as pilot:
        await answer(pilot, "g", "9")  # after the first write, file0 is open
        await pilot.press("4")
        await settle(app, pilot)
        await pilot.pause(0.1)
        await settle(app, pilot)
        labels = tree_labels(app.query_one("#fs-tree", Tree).root)
        assert labels[0] == "/work/  fd 3"
        assert "    file0.txt  50 bytes  fd 5" in labels
        assert "  input.txt" in labels
        assert not any("file1.txt" in label for label in labels)  # not created yet
        await pilot.press("1", "end", "4")  # at the end: file0 renamed, file1 removed
        await pilot.pause(0.1)
        await settle(app, pilot)
        labels = tree_labels(app.query_one("#fs-tree", Tree).root)
        assert any(label.startswith("    final.txt") for label in labels)
        assert not any("file0.txt" in label or "file1.txt" in label for label in labels)
        assert "The filesystem after #" in text_of(app, "#tree-title")


@in_loop
async def test_stats_header_and_output_views(sample: Path) -> None:
    app = make_app(sample)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(app, pilot)
        stats = text_of(app, "#stats-text").splitlines()
        write_row = next(line for line in stats if line.startswith("write "))
        assert write_row.split()[4] == str(LOOPS)  # the calls column, name moved first
        await pilot.press("3")
        info = text_of(app, "#info-text")
        assert "demo.wasm" in info and "LANG=C" in info and "exit status 0" in info
        await pilot.press("5")
        await settle(app, pilot)
        assert text_of(app, "#output-text").startswith("line 0\nline 10\n")


@in_loop
async def test_a_large_trace_opens_on_the_first_rows_without_reading_the_rest(
    tmp_path: Path,
) -> None:
    path = write_sample_trace(tmp_path / "big.wtrace", loops=20_000)
    trace = open_trace(path)
    app = WasitraceApp.for_trace(trace)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("end")
        await pilot.pause()
        assert selected(app) == len(trace) - 1
        # Only the chunks on screen were decoded (the reader's cache holds what it read).
        assert len(trace._cache) <= 3


# -- damaged traces ---------------------------------------------------------------------------
@in_loop
async def test_a_trace_cut_short_shows_what_it_holds_and_says_it_ended_early(
    sample: Path, tmp_path: Path
) -> None:
    cut = tmp_path / "cut.wtrace"
    data = sample.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    app = make_app(cut)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("end")
        await pilot.pause()
        assert 0 < selected(app) < len(all_events(sample)) - 1
        assert "ended early" in text_of(app, "#status")
        await pilot.press("3")
        assert "the recording was interrupted" in text_of(app, "#info-text")


@in_loop
async def test_a_damaged_chunk_is_shown_as_unreadable_rows_and_stops_a_filter(
    sample: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.wtrace"
    data = bytearray(sample.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside a chunk in the middle: its checksum fails
    bad.write_bytes(bytes(data))
    app = make_app(bad)
    async with app.run_test(size=SIZE) as pilot:
        await answer(pilot, "g", "500")
        await pilot.pause(0.1)
        assert app.selected is None
        assert "This call cannot be read" in text_of(app, "#detail-text")
        calls = app.query_one(CallList)
        assert "unreadable" in calls.render_line(1).text
        await answer(pilot, "f", "error")
        await settle(app, pilot)
        assert "stopped at a damaged part" in text_of(app, "#status")
        assert calls.row_count > 0  # the matches before the damage are kept


def test_run_tui_opens_the_trace_and_closes_it_after(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[WasitraceApp] = []

    def fake_run(self: WasitraceApp) -> int:
        seen.append(self)
        return 0

    monkeypatch.setattr(WasitraceApp, "run", fake_run)
    assert run_tui(sample) == 0
    (app,) = seen
    assert app.trace_name == "sample.wtrace" and len(app.source) == len(all_events(sample))
    with pytest.raises(TraceError, match="is not a wasitrace trace"):
        run_tui(REPO / "pyproject.toml")


# -- stepping ---------------------------------------------------------------------------------
def catalog_run(trace_path: Path) -> LiveRun:
    mount = Mount("/data", MemoryBackend.from_host_dir(str(DATA)), kind="memory", source=str(DATA))
    return LiveRun(CATALOG, ["catalog.wasm", "/data"], [], [mount], trace_path=trace_path)


@in_loop
async def test_stepping_a_live_run_to_its_end_records_it(tmp_path: Path) -> None:
    trace_path = tmp_path / "live.wtrace"
    app = WasitraceApp.for_session(live_session(catalog_run(trace_path)))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.step_state == "paused")
        assert app.pending is not None and app.pending.op.name == "preopens"
        await pilot.press("space")
        await until(pilot, lambda: app.step_state == "paused" and len(app.source) == 1)
        assert "paused before #1 arguments()" in text_of(app, "#stepbar")
        # Continue to the next call matching the filter: the write of the summary.
        await answer(pilot, "f", "op=write")
        await pilot.press("c")
        await until(pilot, lambda: app.step_state == "paused" and len(app.source) > 1)
        assert app.source[len(app.source) - 1].op.name == "write"
        await pilot.press("r")
        await until(pilot, lambda: app.step_state == "ended")
        await settle(app, pilot)
        assert app.exit_code == 0
        assert "exited with status 0" in text_of(app, "#stepbar")
        calls = len(app.source)
        await pilot.press("q")
    with open_trace(trace_path) as trace:
        assert len(trace) == calls
        assert trace.footer is not None and trace.footer.exit_status == 0


@in_loop
async def test_abort_stops_the_guest_and_the_trace_says_so(tmp_path: Path) -> None:
    trace_path = tmp_path / "aborted.wtrace"
    app = WasitraceApp.for_session(live_session(catalog_run(trace_path)))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.step_state == "paused")
        await pilot.press("space")
        await until(pilot, lambda: app.step_state == "paused" and len(app.source) == 1)
        await pilot.press("x")
        await until(pilot, lambda: app.step_state == "ended")
        assert app.exit_code == tui_session.EXIT_INTERRUPTED
        assert "aborted" in text_of(app, "#stepbar")
    with open_trace(trace_path) as trace:
        assert [e.op.name for e in trace] == ["preopens"]
        assert trace.footer is not None and trace.footer.exit_status is None


@in_loop
async def test_quitting_while_paused_stops_the_guest_and_closes_the_trace(tmp_path: Path) -> None:
    trace_path = tmp_path / "quit.wtrace"
    app = WasitraceApp.for_session(live_session(catalog_run(trace_path)))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.step_state == "paused")
        await pilot.press("q")
    assert app.return_value == tui_session.EXIT_INTERRUPTED
    session = app.session
    assert session is not None
    for _ in range(100):  # the guest's thread finishes on its own once told to stop
        if session.end is not None:
            break
        await asyncio.sleep(0.05)
    assert session.end is not None and session.end.aborted
    with open_trace(trace_path) as trace:
        assert len(trace) == 0 and trace.footer is not None


def test_a_replay_needs_its_guest(tmp_path: Path) -> None:
    broken = tmp_path / "gone.wtrace"
    gone = TraceHeader(
        guest=GuestInfo("gone.wasm", 1, "00" * 32, "preview1", str(tmp_path / "gone.wasm")),
        argv=(),
        env=(),
        preopens=(),
        wasmtime_version="50.0.1",
        wasitrace_version="0.1.0",
        recorded_at="2024-05-01T12:00:00+00:00",
    )
    TraceWriter(broken, gone).close(0)
    with pytest.raises(GuestError, match="give its path with --guest"):
        replay_session(broken)


@in_loop
async def test_a_replay_is_stepped_against_its_trace(tmp_path: Path) -> None:
    recorded = tmp_path / "catalog.wtrace"
    app = WasitraceApp.for_session(live_session(catalog_run(recorded)))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.step_state == "paused")
        await pilot.press("r")
        await until(pilot, lambda: app.step_state == "ended")
    replay = WasitraceApp.for_session(replay_session(recorded, CATALOG))
    async with replay.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: replay.step_state == "paused")
        await answer(pilot, "f", "op=rename_at")
        await pilot.press("c")
        await until(pilot, lambda: replay.step_state == "paused" and len(replay.source) > 1)
        assert replay.source[len(replay.source) - 1].op.name == "rename_at"
        await pilot.press("r")
        await until(pilot, lambda: replay.step_state == "ended")
        assert replay.exit_code == 0
        assert len(replay.source) == len(all_events(recorded))


@in_loop
async def test_a_replay_that_departs_from_its_trace_ends_with_the_divergence(
    tmp_path: Path,
) -> None:
    # A trace of the catalog guest whose first call is not the one the guest makes.
    wrong = tmp_path / "wrong.wtrace"
    header = TraceHeader.for_guest(CATALOG, "preview1", ["catalog.wasm"])
    with TraceWriter(wrong, header) as writer:
        writer.record(BY_NAME["arguments"].code, (), ["catalog.wasm"], None, 1000)
    app = WasitraceApp.for_session(replay_session(wrong, CATALOG))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.step_state == "paused")
        await pilot.press("r")
        await until(pilot, lambda: app.step_state == "ended")
        assert app.exit_code == tui_session.EXIT_DIVERGED
        assert "departed from the trace" in text_of(app, "#stepbar")
        report = text_of(app, "#info-text")
        assert "preopens" in report and "arguments" in report  # made, and recorded


def test_the_exit_statuses_are_the_command_lines() -> None:
    from tracer import cli

    for name in ("EXIT_CANNOT_RUN", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_TRAP"):
        assert getattr(tui_session, name) == getattr(cli, name)
    assert tui_session.EXIT_DIVERGED == cli.EXIT_DIVERGED
