"""The filesystem rebuilt from trace events (tui/fstree.py): what calls teach, and time travel."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from tracer.backend import (
    DescriptorFlags,
    DescriptorStat,
    DescriptorType,
    DirectoryEntry,
    OpenFlags,
    PathFlags,
)
from tracer.errors import ErrorCode
from tracer.operations import BY_NAME
from tracer.trace.reader import Event
from tui.fstree import FsState, FsTimeline, Node, describe_node, replay_events, root_path

FILE = DescriptorType.REGULAR_FILE
DIR = DescriptorType.DIRECTORY
READ = DescriptorFlags.READ
WRITE = DescriptorFlags.WRITE
FOLLOW = PathFlags.SYMLINK_FOLLOW


class Calls:
    """Builds numbered events: `calls("open_at", 3, 0, "a", 0, READ, result=4)`."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, op: str, *args: Any, result: Any = None, error: ErrorCode | None = None):
        event = Event(len(self.events), BY_NAME[op], tuple(args), result, error, 1000)
        self.events.append(event)
        return event

    def state(self, preopens: tuple[str, ...] = ("/data",)) -> FsState:
        return replay_events(self.events, preopens)


def stat(kind: DescriptorType, size: int, inode: int = 7) -> DescriptorStat:
    return DescriptorStat(1, inode, kind, 1, size, None, None, None)


@pytest.fixture
def calls() -> Calls:
    c = Calls()
    c("preopens", result=[(3, "/data")])
    return c


def test_preopens_are_the_roots_on_their_descriptors() -> None:
    c = Calls()
    assert c.state(("/data", "tmp")).roots == ["/data", "/tmp"]
    c("preopens", result=[(5, "/data")])
    state = c.state(("/data",))
    assert state.path_of(5) == "/data"
    assert state.path_of(3) is None  # the guess (3) gave way to the trace's own word
    assert state.nodes["/data"].type is DIR


def test_a_created_file_exists_with_its_size_and_open_descriptor_until_closed(calls: Calls) -> None:
    calls("open_at", 3, 0, "out.txt", OpenFlags.CREATE | OpenFlags.TRUNCATE, WRITE, result=4)
    calls("write", 4, b"hello", 0, result=5)
    calls("write", 4, b"!", 5, result=1)
    state = calls.state()
    assert state.nodes["/data/out.txt"] == Node(FILE, 6, True)
    assert state.open_on()["/data/out.txt"] == [4]
    calls("close", 4)
    assert "/data/out.txt" not in calls.state().open_on()


def test_a_short_read_tells_the_size_and_a_full_one_a_lower_bound(calls: Calls) -> None:
    calls("open_at", 3, 0, "in.txt", 0, READ, result=4)
    calls("read", 4, 10, 0, result=b"x" * 10)
    assert describe_node(calls.state().nodes["/data/in.txt"]) == "≥10 bytes"
    calls("read", 4, 10, 10, result=b"x" * 3)
    assert calls.state().nodes["/data/in.txt"] == Node(FILE, 13, True)


def test_stat_gives_type_size_and_inode(calls: Calls) -> None:
    calls("open_at", 3, 0, "thing", 0, READ, result=4)
    assert calls.state().nodes["/data/thing"].type is DescriptorType.UNKNOWN
    calls("stat", 4, result=stat(FILE, 99, inode=12))
    calls("stat_at", 3, FOLLOW, "sub/other", result=stat(FILE, 5))
    state = calls.state()
    assert state.nodes["/data/thing"] == Node(FILE, 99, True, 12)
    assert state.nodes["/data/sub/other"].size == 5
    assert state.nodes["/data/sub"].type is DIR  # parents exist implicitly


def test_a_directory_listing_adds_entries_and_drops_what_is_gone(calls: Calls) -> None:
    calls("stat_at", 3, 0, "old.txt", result=stat(FILE, 4))
    calls("open_at", 3, 0, ".", OpenFlags.DIRECTORY, READ, result=4)
    entries = [DirectoryEntry(FILE, "a.txt", 20), DirectoryEntry(DIR, "sub", 21)]
    calls("read_directory", 4, result=entries)
    state = calls.state()
    assert state.children()["/data"] == ["/data/a.txt", "/data/sub"]
    assert state.nodes["/data/sub"] == Node(DIR, inode=21)


def test_removing_a_directory_removes_what_was_beneath(calls: Calls) -> None:
    calls("create_directory_at", 3, "d")
    calls("open_at", 3, 0, "d/f", OpenFlags.CREATE, WRITE, result=4)
    calls("close", 4)
    assert {"/data/d", "/data/d/f"} <= calls.state().nodes.keys()
    calls("unlink_file_at", 3, "d/f")
    calls("remove_directory_at", 3, "d")
    assert calls.state().nodes.keys() == {"/data"}


def test_rename_moves_a_subtree_and_its_open_descriptors(calls: Calls) -> None:
    calls("create_directory_at", 3, "a")
    calls("open_at", 3, 0, "a/x.txt", OpenFlags.CREATE | OpenFlags.EXCLUSIVE, WRITE, result=4)
    calls("rename_at", 3, "a", 3, "b")
    state = calls.state()
    assert "/data/a" not in state.nodes
    assert state.nodes["/data/b/x.txt"] == Node(FILE, 0, True)
    assert state.path_of(4) == "/data/b/x.txt"


def test_a_failed_call_changes_nothing_but_no_entry_says_a_path_is_absent(calls: Calls) -> None:
    calls("stat_at", 3, 0, "gone.txt", result=stat(FILE, 1))
    calls("create_directory_at", 3, "d", error=ErrorCode.NOT_PERMITTED)
    calls("rename_at", 3, "gone.txt", 3, "new.txt", error=ErrorCode.ACCESS)
    assert calls.state().nodes.keys() == {"/data", "/data/gone.txt"}
    calls("open_at", 3, 0, "gone.txt", 0, READ, error=ErrorCode.NO_ENTRY)
    assert "/data/gone.txt" not in calls.state().nodes


def test_a_file_removed_while_open_stays_listed_by_its_descriptor(calls: Calls) -> None:
    calls("open_at", 3, 0, "tmp", OpenFlags.CREATE, WRITE, result=4)
    calls("unlink_file_at", 3, "tmp")
    state = calls.state()
    assert "/data/tmp" not in state.nodes
    assert state.open_on()["/data/tmp"] == [4]


def test_symlinks_keep_their_text_and_hard_links_copy_the_file(calls: Calls) -> None:
    calls("stat_at", 3, 0, "f", result=stat(FILE, 8, inode=30))
    calls("symlink_at", 3, "f", "link")
    calls("link_at", 3, 0, "f", 3, "hard")
    calls("stat_at", 3, FOLLOW, "link", result=stat(FILE, 8, inode=30))
    state = calls.state()
    assert state.nodes["/data/link"].target == "f"
    assert describe_node(state.nodes["/data/link"]) == "-> f, 1 byte"
    assert state.nodes["/data/hard"] == state.nodes["/data/f"]


def test_the_paths_a_call_works_on_are_resolved_through_its_descriptors(calls: Calls) -> None:
    calls("open_at", 3, 0, "notes", OpenFlags.DIRECTORY, READ, result=4)
    state = calls.state()
    rename = Event(9, BY_NAME["rename_at"], (4, "a", 3, "b/../c"), None, None, 0)
    assert state.paths_of(rename) == ["/data/notes/a", "/data/c"]
    read = Event(9, BY_NAME["read"], (4, 10, 0), b"", None, 0)
    assert state.paths_of(read) == ["/data/notes"]


def test_root_paths_are_absolute_and_normalised() -> None:
    assert [root_path(p) for p in ("/data/", "data", ".", "/", "")] == [
        "/data",
        "/data",
        "/",
        "/",
        "/",
    ]


def _random_events(n: int, seed: int) -> list[Event]:
    rng = random.Random(seed)
    c = Calls()
    c("preopens", result=[(3, "/r")])
    open_fds: list[int] = []
    for _ in range(n):
        name = f"d{rng.randrange(3)}/f{rng.randrange(6)}"
        pick = rng.randrange(6)
        if pick == 0:
            fd = 4 + len(open_fds)
            c("open_at", 3, 0, name, OpenFlags.CREATE, WRITE, result=fd)
            open_fds.append(fd)
        elif pick == 1 and open_fds:
            c("write", open_fds[-1], b"ab", rng.randrange(100), result=2)
        elif pick == 2 and open_fds:
            c("close", open_fds.pop())
        elif pick == 3:
            c("unlink_file_at", 3, name)
        elif pick == 4:
            c("rename_at", 3, name, 3, f"d{rng.randrange(3)}/g{rng.randrange(4)}")
        else:
            c("stat_at", 3, 0, name, result=stat(FILE, rng.randrange(50)))
    return c.events


class ListSource:
    def __init__(self, events: list[Event]) -> None:
        self._events = events

    def __len__(self) -> int:
        return len(self._events)

    def events(self, start: int = 0, stop: int | None = None) -> Iterator[Event]:
        return iter(self._events[start:stop])


def test_the_timeline_gives_the_same_state_as_replaying_from_the_start() -> None:
    events = _random_events(600, seed=7)
    timeline = FsTimeline(ListSource(events), ["/r"], every=50)
    rng = random.Random(1)
    for seq in [*rng.sample(range(len(events)), 40), 0, len(events) - 1, -1]:
        got = timeline.state_at(seq)
        expected = replay_events(events[: seq + 1], ["/r"])
        assert (got.nodes, got.descriptors, got.applied) == (
            expected.nodes,
            expected.descriptors,
            expected.applied,
        ), seq


def test_going_back_in_time_replays_from_the_nearest_checkpoint_only() -> None:
    events = _random_events(1000, seed=3)
    timeline = FsTimeline(ListSource(events), ["/r"], every=100)
    timeline.state_at(999)  # leaves checkpoints on the way
    before = timeline.replayed
    timeline.state_at(450)
    assert timeline.replayed - before == 51  # from the checkpoint at 400 to event 450


def test_checkpoints_are_thinned_to_stay_bounded() -> None:
    events = _random_events(1000, seed=5)
    timeline = FsTimeline(ListSource(events), ["/r"], every=10, max_checkpoints=8)
    timeline.state_at(999)
    assert len(timeline.checkpoints) <= 8
    state = timeline.state_at(500)
    assert state.nodes == replay_events(events[:501], ["/r"]).nodes
