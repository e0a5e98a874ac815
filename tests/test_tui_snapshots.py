"""What the TUI's main screens show at 80x24, pinned by pytest-textual-snapshot.

After a deliberate change to the screens, look at the new pictures and accept them with
`pytest tests/test_tui_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests.test_tui import write_sample_trace
from tracer.trace import open_trace
from tui.app import WasitraceApp

SnapCompare = Callable[..., bool]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample_trace(tmp_path_factory.mktemp("snap") / "sample.wtrace")


def app_for(path: Path) -> WasitraceApp:
    return WasitraceApp.for_trace(open_trace(path))


def going_to(seq: int, *keys: str) -> Callable[[Pilot[Any]], Any]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.press("g")
        pilot.app.query_one("#prompt", Input).value = str(seq)
        await pilot.press("enter", *keys)
        await pilot.pause(0.1)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.1)

    return run_before


def test_calls_with_the_detail_of_a_write(snap_compare: SnapCompare, sample: Path) -> None:
    assert snap_compare(app_for(sample), run_before=going_to(9))


def test_calls_with_a_failed_call_selected(snap_compare: SnapCompare, sample: Path) -> None:
    assert snap_compare(app_for(sample), run_before=going_to(7))


def test_statistics(snap_compare: SnapCompare, sample: Path) -> None:
    assert snap_compare(app_for(sample), run_before=going_to(0, "2"))


def test_header(snap_compare: SnapCompare, sample: Path) -> None:
    assert snap_compare(app_for(sample), run_before=going_to(0, "3"))


def test_file_tree_at_a_call(snap_compare: SnapCompare, sample: Path) -> None:
    assert snap_compare(app_for(sample), run_before=going_to(40, "4"))
