"""What only the memory backend promises, beyond the shared contract (`tests/backend_contract.py`).

Exact link counts and timestamps (with a fake clock), inode and descriptor numbering, copying a
host tree with `from_host_dir`, `snapshot`, limits, and that the data path does no path work.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backend_contract import FOLLOW, NOFOLLOW, READ, RW, WRITE, fails_with, make_file
from tracer.backend import DescriptorType, OpenFlags
from tracer.backends import memory
from tracer.backends.memory import DEVICE, MemoryBackend
from tracer.errors import ErrorCode

CREATE = OpenFlags.CREATE


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """A fake `time_ns` for the backend: every call returns the next tick; [0] is the last."""
    now = [1_000]

    def tick() -> int:
        now[0] += 1
        return now[0]

    monkeypatch.setattr(memory, "_now", tick)
    yield now


@pytest.fixture
def fs() -> MemoryBackend:
    return MemoryBackend()


def times(fs: MemoryBackend, path: str) -> tuple[int | None, int | None, int | None]:
    st = fs.stat_at(fs.root(), NOFOLLOW, path)
    return st.data_access_timestamp, st.data_modification_timestamp, st.status_change_timestamp


# -- link counts -----------------------------------------------------------------------------


def test_directory_link_count_is_two_plus_subdirectories(fs: MemoryBackend) -> None:
    fs.create_directory_at(fs.root(), "d")
    assert fs.stat_at(fs.root(), NOFOLLOW, "d").link_count == 2
    fs.create_directory_at(fs.root(), "d/x")
    fs.create_directory_at(fs.root(), "d/y")
    make_file(fs, "d/file")
    assert fs.stat_at(fs.root(), NOFOLLOW, "d").link_count == 4
    fs.remove_directory_at(fs.root(), "d/x")
    assert fs.stat_at(fs.root(), NOFOLLOW, "d").link_count == 3


def test_moving_a_directory_moves_its_parent_link(fs: MemoryBackend) -> None:
    fs.create_directory_at(fs.root(), "a")
    fs.create_directory_at(fs.root(), "b")
    fs.create_directory_at(fs.root(), "a/sub")
    fs.rename_at(fs.root(), "a/sub", fs.root(), "b/sub")
    assert fs.stat_at(fs.root(), NOFOLLOW, "a").link_count == 2
    assert fs.stat_at(fs.root(), NOFOLLOW, "b").link_count == 3


def test_replacing_a_directory_by_rename_drops_its_link(fs: MemoryBackend) -> None:
    fs.create_directory_at(fs.root(), "a")
    fs.create_directory_at(fs.root(), "b")
    held = fs.open_at(fs.root(), NOFOLLOW, "b", OpenFlags.DIRECTORY, READ)
    fs.rename_at(fs.root(), "a", fs.root(), "b")
    assert fs.stat(fs.root()).link_count == 3  # '.', and '..' of the one remaining subdirectory
    assert fs.stat(held).link_count == 0


# -- timestamps (a fake clock makes each one exact) ---------------------------------------------


def test_creating_a_file_stamps_it_and_its_directory(fs: MemoryBackend, clock: list[int]) -> None:
    fd = fs.open_at(fs.root(), NOFOLLOW, "f", CREATE, WRITE)
    created = clock[0]
    assert times(fs, "f") == (created, created, created)
    root = fs.stat(fs.root())
    assert (root.data_modification_timestamp, root.status_change_timestamp) == (created, created)
    fs.close(fd)


def test_write_changes_modification_and_status_times_only(
    fs: MemoryBackend, clock: list[int]
) -> None:
    make_file(fs, "f")
    atime_before = times(fs, "f")[0]
    fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, WRITE)
    fs.write(fd, b"x", 0)
    assert times(fs, "f") == (atime_before, clock[0], clock[0])


def test_empty_write_changes_no_time(fs: MemoryBackend, clock: list[int]) -> None:
    make_file(fs, "f")
    before = times(fs, "f")
    fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, WRITE)
    assert fs.write(fd, b"", 0) == 0
    assert times(fs, "f") == before


def test_read_changes_the_access_time_only(fs: MemoryBackend, clock: list[int]) -> None:
    make_file(fs, "f", b"data")
    _, mtime, ctime = times(fs, "f")
    fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, READ)
    fs.read(fd, 2, 0)
    assert times(fs, "f") == (clock[0], mtime, ctime)


def test_hard_link_changes_the_status_time_not_the_modification_time(
    fs: MemoryBackend, clock: list[int]
) -> None:
    make_file(fs, "f", b"data")
    _, mtime, _ = times(fs, "f")
    fs.link_at(fs.root(), NOFOLLOW, "f", fs.root(), "g")
    linked = clock[0]
    assert times(fs, "f")[1:] == (mtime, linked)


def test_set_times_stamps_the_status_time_unless_nothing_changes(
    fs: MemoryBackend, clock: list[int]
) -> None:
    make_file(fs, "f")
    fs.set_times_at(fs.root(), NOFOLLOW, "f", 5, "now")
    assert times(fs, "f") == (5, clock[0], clock[0])
    before = times(fs, "f")
    fs.set_times_at(fs.root(), NOFOLLOW, "f", None, None)
    assert times(fs, "f") == before


def test_rename_stamps_both_directories_and_the_moved_file(
    fs: MemoryBackend, clock: list[int]
) -> None:
    fs.create_directory_at(fs.root(), "a")
    fs.create_directory_at(fs.root(), "b")
    make_file(fs, "a/f")
    fs.rename_at(fs.root(), "a/f", fs.root(), "b/f")
    renamed = clock[0]
    assert times(fs, "a")[1:] == (renamed, renamed)
    assert times(fs, "b")[1:] == (renamed, renamed)
    assert times(fs, "b/f")[2] == renamed


def test_truncating_open_stamps_the_file(fs: MemoryBackend, clock: list[int]) -> None:
    make_file(fs, "f", b"data")
    fs.open_at(fs.root(), NOFOLLOW, "f", OpenFlags.TRUNCATE, WRITE)
    assert times(fs, "f")[1:] == (clock[0], clock[0])


# -- numbering ---------------------------------------------------------------------------------


def test_inodes_are_never_reused(fs: MemoryBackend) -> None:
    seen = set()
    for _ in range(5):
        make_file(fs, "f")
        seen.add(fs.stat_at(fs.root(), NOFOLLOW, "f").inode)
        fs.unlink_file_at(fs.root(), "f")
    assert len(seen) == 5


def test_device_is_constant_and_can_be_chosen() -> None:
    assert MemoryBackend().stat(0).device == DEVICE
    other = MemoryBackend(device=7)
    make_file(other, "f")
    assert other.stat_at(other.root(), NOFOLLOW, "f").device == 7


def test_descriptors_are_small_and_the_lowest_free_is_reused(fs: MemoryBackend) -> None:
    make_file(fs, "f")
    fds = [fs.open_at(fs.root(), NOFOLLOW, "f", 0, READ) for _ in range(3)]
    assert fds == [1, 2, 3]
    fs.close(2)
    fs.close(1)
    assert fs.open_at(fs.root(), NOFOLLOW, "f", 0, READ) == 1


def test_closing_the_root_leaves_it_usable(fs: MemoryBackend) -> None:
    fs.close(fs.root())
    make_file(fs, "f")
    assert fs.stat(fs.root()).type == DescriptorType.DIRECTORY


def test_data_operations_do_no_path_resolution(
    fs: MemoryBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_file(fs, "f", b"abc")
    fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, RW)

    def no_paths(*args: object) -> None:
        raise AssertionError("path resolution on the data path")

    monkeypatch.setattr(memory, "_split", no_paths)
    assert fs.read(fd, 10, 0) == b"abc"
    assert fs.write(fd, b"d", 3) == 1
    assert fs.append(fd, b"e") == 1
    assert fs.stat(fd).size == 5


# -- limits and malformed arguments ------------------------------------------------------------


def test_nul_in_a_path_is_invalid(fs: MemoryBackend) -> None:
    with fails_with(ErrorCode.INVALID):
        fs.open_at(fs.root(), NOFOLLOW, "a\0b", CREATE, WRITE)
    with fails_with(ErrorCode.INVALID):
        fs.symlink_at(fs.root(), "a\0b", "link")


def test_path_of_4096_bytes_is_name_too_long(fs: MemoryBackend) -> None:
    with fails_with(ErrorCode.NAME_TOO_LONG):
        fs.stat_at(fs.root(), NOFOLLOW, "a/" * 2048)


def test_name_length_is_counted_in_utf8_bytes(fs: MemoryBackend) -> None:
    with fails_with(ErrorCode.NAME_TOO_LONG):
        fs.create_directory_at(fs.root(), "é" * 128)  # 256 bytes
    fs.create_directory_at(fs.root(), "é" * 127)


def test_negative_offsets_are_invalid(fs: MemoryBackend) -> None:
    make_file(fs, "f", b"x")
    fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, RW)
    with fails_with(ErrorCode.INVALID):
        fs.read(fd, 1, -1)
    with fails_with(ErrorCode.INVALID):
        fs.write(fd, b"x", -1)
    with fails_with(ErrorCode.INVALID):
        fs.set_size(fd, -1)


def test_sizes_past_the_largest_file_are_file_too_large(fs: MemoryBackend) -> None:
    make_file(fs, "f")
    fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, RW)
    with fails_with(ErrorCode.FILE_TOO_LARGE):
        fs.write(fd, b"x", 2**63)
    with fails_with(ErrorCode.FILE_TOO_LARGE):
        fs.set_size(fd, 2**63)


def test_write_ending_past_the_largest_file_is_invalid_as_linux_says(fs: MemoryBackend) -> None:
    make_file(fs, "f")
    fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, RW)
    with fails_with(ErrorCode.INVALID):
        fs.write(fd, b"xy", 2**63 - 2)
    assert fs.stat(fd).size == 0


def test_set_size_without_write_is_invalid_as_ftruncate_says(fs: MemoryBackend) -> None:
    make_file(fs, "f", b"keep")
    fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, READ)
    with fails_with(ErrorCode.INVALID):
        fs.set_size(fd, 0)
    with fails_with(ErrorCode.INVALID):
        fs.set_size(fs.root(), 0)


# -- from_host_dir and snapshot ----------------------------------------------------------------


def host_state(root: Path) -> dict[str, tuple[int, int, int, bytes | str | None]]:
    """Every host entry's mode, mtime, ctime and contents: any write would change one."""
    state: dict[str, tuple[int, int, int, bytes | str | None]] = {}
    for path in [root, *sorted(root.rglob("*"))]:
        st = path.lstat()
        content: bytes | str | None = None
        if path.is_symlink():
            content = os.readlink(path)
        elif path.is_file():
            content = path.read_bytes()
        state[str(path.relative_to(root))] = (st.st_mode, st.st_mtime_ns, st.st_ctime_ns, content)
    return state


@pytest.fixture
def host_tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "dir" / "deeper").mkdir(parents=True)
    (root / "top.txt").write_bytes(b"top")
    (root / "dir" / "inner.bin").write_bytes(bytes(range(256)))
    (root / "dir" / "deeper" / "empty").write_bytes(b"")
    os.link(root / "top.txt", root / "dir" / "same.txt")
    (root / "rel-link").symlink_to("dir/inner.bin")
    (root / "abs-link").symlink_to("/etc/passwd")
    (root / "escape").symlink_to("../../outside")
    os.utime(root / "top.txt", ns=(1_000_000_000, 2_000_000_000))
    return root


def test_from_host_dir_copies_files_directories_and_symlinks(host_tree: Path) -> None:
    fs = MemoryBackend.from_host_dir(host_tree)
    assert fs.snapshot() == {
        "abs-link": ("symlink", "/etc/passwd"),
        "dir": None,
        "dir/deeper": None,
        "dir/deeper/empty": b"",
        "dir/inner.bin": bytes(range(256)),
        "dir/same.txt": b"top",
        "escape": ("symlink", "../../outside"),
        "rel-link": ("symlink", "dir/inner.bin"),
        "top.txt": b"top",
    }


def test_from_host_dir_keeps_hard_links_times_and_link_counts(host_tree: Path) -> None:
    fs = MemoryBackend.from_host_dir(str(host_tree))
    top = fs.stat_at(fs.root(), NOFOLLOW, "top.txt")
    assert top.inode == fs.stat_at(fs.root(), NOFOLLOW, "dir/same.txt").inode
    assert top.link_count == 2
    assert (top.data_access_timestamp, top.data_modification_timestamp) == (
        1_000_000_000,
        2_000_000_000,
    )
    assert fs.stat_at(fs.root(), NOFOLLOW, "dir").link_count == 3
    fd = fs.open_at(fs.root(), NOFOLLOW, "dir/same.txt", 0, WRITE)
    fs.append(fd, b"!")
    assert fs.snapshot()["top.txt"] == b"top!"


def test_from_host_dir_never_changes_the_host(host_tree: Path) -> None:
    before = host_state(host_tree)
    fs = MemoryBackend.from_host_dir(host_tree)
    make_file(fs, "top.txt", b"changed in memory")
    fs.unlink_file_at(fs.root(), "dir/inner.bin")
    fs.create_directory_at(fs.root(), "new")
    assert host_state(host_tree) == before


def test_copied_symlinks_stay_confined(host_tree: Path) -> None:
    fs = MemoryBackend.from_host_dir(host_tree)
    assert fs.read(fs.open_at(fs.root(), FOLLOW, "rel-link", 0, READ), 3, 0) == b"\0\1\2"
    with fails_with(ErrorCode.NOT_PERMITTED):
        fs.open_at(fs.root(), FOLLOW, "abs-link", 0, READ)
    with fails_with(ErrorCode.NOT_PERMITTED):
        fs.stat_at(fs.root(), FOLLOW, "escape")


def test_from_host_dir_refuses_special_files(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ValueError, match="pipe"):
        MemoryBackend.from_host_dir(tmp_path)


def test_host_names_that_are_not_utf8_are_copied_but_cannot_be_listed(tmp_path: Path) -> None:
    with open(os.path.join(os.fsencode(tmp_path), b"bad-\xff"), "wb") as file:
        file.write(b"x")
    fs = MemoryBackend.from_host_dir(tmp_path)
    assert fs.snapshot() == {"bad-\udcff": b"x"}
    with fails_with(ErrorCode.ILLEGAL_BYTE_SEQUENCE):
        fs.read_directory(fs.root())


def test_from_host_dir_of_a_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        MemoryBackend.from_host_dir(tmp_path / "f")


def test_snapshot_of_an_empty_filesystem_is_empty(fs: MemoryBackend) -> None:
    assert fs.snapshot() == {}
