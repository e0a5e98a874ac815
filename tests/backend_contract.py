"""The one contract every `tracer.backend.Filesystem` passes, written once.

A backend opts in by subclassing `FilesystemContract` in a collected test module and providing an
`fs` fixture that returns a fresh, empty filesystem (see `tests/test_backend_contract.py`). This
module itself holds no `test_*` functions at top level and its name does not start with `test_`,
so pytest only runs the suite through those subclasses.

Every expectation here is POSIX behaviour as Linux implements it, mapped to WASI error codes,
plus the confinement rules of the `tracer.backend` docstring; nothing is specific to one backend.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tracer.backend import (
    Advice,
    DescriptorFlags,
    DescriptorType,
    Filesystem,
    OpenFlags,
    PathFlags,
)
from tracer.errors import ErrorCode, WasiError

READ = DescriptorFlags.READ
WRITE = DescriptorFlags.WRITE
RW = DescriptorFlags.READ | DescriptorFlags.WRITE
FOLLOW = PathFlags.SYMLINK_FOLLOW
NOFOLLOW = 0
CREATE = OpenFlags.CREATE
EXCLUSIVE = OpenFlags.EXCLUSIVE
TRUNCATE = OpenFlags.TRUNCATE
DIRECTORY = OpenFlags.DIRECTORY

SECOND = 1_000_000_000


@contextmanager
def fails_with(code: ErrorCode) -> Iterator[None]:
    """Expect the block to raise WasiError with exactly `code`."""
    with pytest.raises(WasiError) as info:
        yield
    assert info.value.code == code, f"expected {code.value}, got {info.value}"


def make_file(fs: Filesystem, path: str, data: bytes = b"", *, at: int | None = None) -> None:
    fd = fs.open_at(fs.root() if at is None else at, NOFOLLOW, path, CREATE | TRUNCATE, WRITE)
    try:
        if data:
            assert fs.write(fd, data, 0) == len(data)
    finally:
        fs.close(fd)


def contents(fs: Filesystem, path: str, *, at: int | None = None) -> bytes:
    fd = fs.open_at(fs.root() if at is None else at, FOLLOW, path, 0, READ)
    try:
        return fs.read(fd, fs.stat(fd).size + 1, 0)
    finally:
        fs.close(fd)


def open_dir(fs: Filesystem, path: str) -> int:
    return fs.open_at(fs.root(), NOFOLLOW, path, DIRECTORY, READ)


def names(fs: Filesystem, path: str = ".") -> list[str]:
    fd = open_dir(fs, path)
    try:
        return sorted(entry.name for entry in fs.read_directory(fd))
    finally:
        fs.close(fd)


def kind(fs: Filesystem, path: str, path_flags: int = NOFOLLOW) -> DescriptorType:
    return fs.stat_at(fs.root(), path_flags, path).type


def exists(fs: Filesystem, path: str) -> bool:
    try:
        fs.stat_at(fs.root(), NOFOLLOW, path)
    except WasiError as error:
        assert error.code == ErrorCode.NO_ENTRY
        return False
    return True


class FilesystemContract:
    """The shared suite; subclasses provide `fs`, a fresh empty filesystem per test."""

    @pytest.fixture
    def fs(self) -> Filesystem:
        raise NotImplementedError("a backend's test class provides the `fs` fixture")

    # -- the root and descriptors ----------------------------------------------------------------

    def test_root_is_an_empty_directory(self, fs: Filesystem) -> None:
        assert fs.stat(fs.root()).type == DescriptorType.DIRECTORY
        assert fs.read_directory(fs.root()) == []

    def test_unknown_descriptor_is_bad_descriptor(self, fs: Filesystem) -> None:
        with fails_with(ErrorCode.BAD_DESCRIPTOR):
            fs.stat(987_654)

    def test_closed_descriptor_is_bad_descriptor(self, fs: Filesystem) -> None:
        make_file(fs, "f", b"x")
        fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, READ)
        fs.close(fd)
        with fails_with(ErrorCode.BAD_DESCRIPTOR):
            fs.read(fd, 1, 0)
        with fails_with(ErrorCode.BAD_DESCRIPTOR):
            fs.close(fd)

    def test_open_at_a_file_descriptor_is_not_directory(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, READ)
        with fails_with(ErrorCode.NOT_DIRECTORY):
            fs.open_at(fd, NOFOLLOW, "x", 0, READ)
        with fails_with(ErrorCode.NOT_DIRECTORY):
            fs.create_directory_at(fd, "x")

    def test_inode_numbers_identify_files(self, fs: Filesystem) -> None:
        make_file(fs, "a")
        make_file(fs, "b")
        fs.create_directory_at(fs.root(), "d")
        a = fs.stat_at(fs.root(), NOFOLLOW, "a")
        b = fs.stat_at(fs.root(), NOFOLLOW, "b")
        d = fs.stat_at(fs.root(), NOFOLLOW, "d")
        assert len({a.inode, b.inode, d.inode, fs.stat(fs.root()).inode}) == 4
        fd = fs.open_at(fs.root(), NOFOLLOW, "a", 0, READ)
        assert fs.stat(fd).inode == a.inode
        assert a.device == b.device == d.device == fs.stat(fd).device

    # -- open_at ---------------------------------------------------------------------------------

    def test_created_file_reads_back_what_was_written(self, fs: Filesystem) -> None:
        fd = fs.open_at(fs.root(), NOFOLLOW, "f", CREATE, RW)
        assert fs.write(fd, b"hello", 0) == 5
        assert fs.read(fd, 100, 0) == b"hello"
        fs.close(fd)
        assert contents(fs, "f") == b"hello"

    def test_open_missing_file_is_no_entry(self, fs: Filesystem) -> None:
        with fails_with(ErrorCode.NO_ENTRY):
            fs.open_at(fs.root(), NOFOLLOW, "missing", 0, READ)

    def test_open_empty_path_is_no_entry(self, fs: Filesystem) -> None:
        with fails_with(ErrorCode.NO_ENTRY):
            fs.open_at(fs.root(), NOFOLLOW, "", 0, READ)

    def test_create_exclusive_on_existing_file_is_exist(self, fs: Filesystem) -> None:
        make_file(fs, "f", b"keep")
        with fails_with(ErrorCode.EXIST):
            fs.open_at(fs.root(), NOFOLLOW, "f", CREATE | EXCLUSIVE, WRITE)
        assert contents(fs, "f") == b"keep"

    def test_create_exclusive_on_dangling_symlink_is_exist(self, fs: Filesystem) -> None:
        fs.symlink_at(fs.root(), "target", "link")
        with fails_with(ErrorCode.EXIST):
            fs.open_at(fs.root(), FOLLOW, "link", CREATE | EXCLUSIVE, WRITE)
        assert not exists(fs, "target")

    def test_create_through_dangling_symlink_creates_its_target(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "d")
        fs.symlink_at(fs.root(), "d/target", "link")
        fd = fs.open_at(fs.root(), FOLLOW, "link", CREATE, WRITE)
        fs.write(fd, b"via link", 0)
        assert contents(fs, "d/target") == b"via link"
        assert kind(fs, "link") == DescriptorType.SYMBOLIC_LINK

    def test_create_without_follow_on_symlink_is_loop(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        fs.symlink_at(fs.root(), "f", "link")
        with fails_with(ErrorCode.LOOP):
            fs.open_at(fs.root(), NOFOLLOW, "link", CREATE, WRITE)

    def test_create_opens_an_existing_file_without_truncating(self, fs: Filesystem) -> None:
        make_file(fs, "f", b"old")
        fd = fs.open_at(fs.root(), NOFOLLOW, "f", CREATE, RW)
        assert fs.read(fd, 10, 0) == b"old"

    def test_create_without_write_flag_makes_a_file_it_cannot_write(self, fs: Filesystem) -> None:
        fd = fs.open_at(fs.root(), NOFOLLOW, "f", CREATE, READ)
        assert kind(fs, "f") == DescriptorType.REGULAR_FILE
        with fails_with(ErrorCode.BAD_DESCRIPTOR):
            fs.write(fd, b"x", 0)

    def test_truncate_without_write_flag_still_truncates(self, fs: Filesystem) -> None:
        make_file(fs, "f", b"old contents")
        fd = fs.open_at(fs.root(), NOFOLLOW, "f", TRUNCATE, READ)
        assert fs.read(fd, 20, 0) == b""

    def test_truncate_empties_an_existing_file(self, fs: Filesystem) -> None:
        make_file(fs, "f", b"old contents")
        fd = fs.open_at(fs.root(), NOFOLLOW, "f", TRUNCATE, RW)
        assert fs.stat(fd).size == 0
        assert fs.read(fd, 10, 0) == b""

    def test_directory_flag_on_a_file_is_not_directory(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        with fails_with(ErrorCode.NOT_DIRECTORY):
            fs.open_at(fs.root(), NOFOLLOW, "f", DIRECTORY, READ)

    def test_directory_flag_opens_a_directory(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "d")
        make_file(fs, "d/inner")
        fd = fs.open_at(fs.root(), NOFOLLOW, "d", DIRECTORY, READ)
        assert [entry.name for entry in fs.read_directory(fd)] == ["inner"]

    def test_opening_a_directory_for_writing_is_is_directory(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "d")
        with fails_with(ErrorCode.IS_DIRECTORY):
            fs.open_at(fs.root(), NOFOLLOW, "d", 0, RW)
        with fails_with(ErrorCode.IS_DIRECTORY):
            fs.open_at(fs.root(), NOFOLLOW, "d", DIRECTORY, WRITE)

    def test_truncating_a_directory_is_is_directory(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "d")
        with fails_with(ErrorCode.IS_DIRECTORY):
            fs.open_at(fs.root(), NOFOLLOW, "d", TRUNCATE, READ)

    def test_create_on_an_existing_directory_is_is_directory(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "d")
        with fails_with(ErrorCode.IS_DIRECTORY):
            fs.open_at(fs.root(), NOFOLLOW, "d", CREATE, READ)

    def test_create_with_a_trailing_slash_is_is_directory(self, fs: Filesystem) -> None:
        with fails_with(ErrorCode.IS_DIRECTORY):
            fs.open_at(fs.root(), NOFOLLOW, "new/", CREATE, WRITE)
        assert not exists(fs, "new")

    def test_create_together_with_directory_is_invalid(self, fs: Filesystem) -> None:
        with fails_with(ErrorCode.INVALID):
            fs.open_at(fs.root(), NOFOLLOW, "new", CREATE | DIRECTORY, READ)
        assert not exists(fs, "new")

    def test_trailing_slash_on_a_file_is_not_directory(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        with fails_with(ErrorCode.NOT_DIRECTORY):
            fs.open_at(fs.root(), NOFOLLOW, "f/", 0, READ)

    def test_trailing_slash_opens_a_directory(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "d")
        fd = fs.open_at(fs.root(), NOFOLLOW, "d/", 0, READ)
        assert fs.stat(fd).type == DescriptorType.DIRECTORY

    def test_final_symlink_without_follow_is_loop(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        fs.symlink_at(fs.root(), "f", "link")
        with fails_with(ErrorCode.LOOP):
            fs.open_at(fs.root(), NOFOLLOW, "link", 0, READ)

    def test_symlink_to_directory_with_directory_flag_unfollowed_is_not_directory(
        self, fs: Filesystem
    ) -> None:
        fs.create_directory_at(fs.root(), "d")
        fs.symlink_at(fs.root(), "d", "link")
        with fails_with(ErrorCode.NOT_DIRECTORY):
            fs.open_at(fs.root(), NOFOLLOW, "link", DIRECTORY, READ)

    def test_final_symlink_with_follow_opens_the_target(self, fs: Filesystem) -> None:
        make_file(fs, "f", b"target")
        fs.symlink_at(fs.root(), "f", "link")
        fd = fs.open_at(fs.root(), FOLLOW, "link", 0, READ)
        assert fs.read(fd, 10, 0) == b"target"
        assert fs.stat(fd).type == DescriptorType.REGULAR_FILE

    def test_trailing_slash_follows_a_final_symlink(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "d")
        fs.symlink_at(fs.root(), "d", "link")
        fd = fs.open_at(fs.root(), NOFOLLOW, "link/", 0, READ)
        assert fs.stat(fd).inode == fs.stat_at(fs.root(), NOFOLLOW, "d").inode

    def test_intermediate_symlinks_are_followed_without_follow(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "d")
        make_file(fs, "d/f", b"inside")
        fs.symlink_at(fs.root(), "d", "link")
        fd = fs.open_at(fs.root(), NOFOLLOW, "link/f", 0, READ)
        assert fs.read(fd, 10, 0) == b"inside"

    def test_missing_intermediate_directory_is_no_entry(self, fs: Filesystem) -> None:
        with fails_with(ErrorCode.NO_ENTRY):
            fs.open_at(fs.root(), NOFOLLOW, "missing/f", CREATE, WRITE)

    def test_file_as_intermediate_component_is_not_directory(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        with fails_with(ErrorCode.NOT_DIRECTORY):
            fs.open_at(fs.root(), NOFOLLOW, "f/g", CREATE, WRITE)
        with fails_with(ErrorCode.NOT_DIRECTORY):
            fs.stat_at(fs.root(), NOFOLLOW, "f/g")

    def test_path_that_is_not_utf8_is_illegal_byte_sequence(self, fs: Filesystem) -> None:
        # A lone surrogate is how a non-UTF-8 byte reaches Python; WASI paths are UTF-8.
        with fails_with(ErrorCode.ILLEGAL_BYTE_SEQUENCE):
            fs.create_directory_at(fs.root(), "bad-\udcff")
        with fails_with(ErrorCode.ILLEGAL_BYTE_SEQUENCE):
            fs.symlink_at(fs.root(), "bad-\udcff", "link")
        assert names(fs) == []

    def test_name_longer_than_255_bytes_is_name_too_long(self, fs: Filesystem) -> None:
        with fails_with(ErrorCode.NAME_TOO_LONG):
            fs.open_at(fs.root(), NOFOLLOW, "n" * 256, CREATE, WRITE)
        make_file(fs, "n" * 255)
        assert exists(fs, "n" * 255)

    def test_create_in_a_removed_directory_is_no_entry(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "d")
        fd = open_dir(fs, "d")
        fs.remove_directory_at(fs.root(), "d")
        with fails_with(ErrorCode.NO_ENTRY):
            fs.open_at(fd, NOFOLLOW, "f", CREATE, WRITE)
        # POSIX has readdir treat a removed directory as empty (Linux's getdents says ENOENT).
        assert fs.read_directory(fd) == []
        assert fs.stat(fd).link_count == 0

    # -- confinement -----------------------------------------------------------------------------

    def test_absolute_path_is_not_permitted(self, fs: Filesystem) -> None:
        with fails_with(ErrorCode.NOT_PERMITTED):
            fs.open_at(fs.root(), NOFOLLOW, "/etc/passwd", 0, READ)
        with fails_with(ErrorCode.NOT_PERMITTED):
            fs.stat_at(fs.root(), NOFOLLOW, "/")

    def test_dot_dot_above_the_root_is_not_permitted(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "a")
        with fails_with(ErrorCode.NOT_PERMITTED):
            fs.stat_at(fs.root(), NOFOLLOW, "..")
        with fails_with(ErrorCode.NOT_PERMITTED):
            fs.open_at(fs.root(), NOFOLLOW, "a/../../x", CREATE, WRITE)
        with fails_with(ErrorCode.NOT_PERMITTED):
            fs.create_directory_at(fs.root(), "../escaped")

    def test_dot_dot_within_the_root_is_allowed(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "a")
        make_file(fs, "f", b"top")
        assert fs.stat_at(fs.root(), NOFOLLOW, "a/..").inode == fs.stat(fs.root()).inode
        assert contents(fs, "a/../f") == b"top"

    def test_dot_dot_above_a_directory_descriptor_is_not_permitted(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "sub")
        make_file(fs, "f")
        sub = open_dir(fs, "sub")
        with fails_with(ErrorCode.NOT_PERMITTED):
            fs.stat_at(sub, NOFOLLOW, "../f")

    def test_symlink_leaving_the_descriptor_is_not_permitted(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "sub")
        make_file(fs, "f", b"outside sub")
        fs.symlink_at(fs.root(), "../f", "sub/up")
        assert contents(fs, "sub/up") == b"outside sub"
        sub = open_dir(fs, "sub")
        with fails_with(ErrorCode.NOT_PERMITTED):
            fs.open_at(sub, FOLLOW, "up", 0, READ)

    def test_symlink_above_the_root_is_not_permitted(self, fs: Filesystem) -> None:
        fs.symlink_at(fs.root(), "..", "up")
        with fails_with(ErrorCode.NOT_PERMITTED):
            fs.stat_at(fs.root(), FOLLOW, "up")
        with fails_with(ErrorCode.NOT_PERMITTED):
            fs.open_at(fs.root(), NOFOLLOW, "up/x", CREATE, WRITE)

    def test_symlink_with_an_absolute_target_is_not_permitted(self, fs: Filesystem) -> None:
        # A link that would point out of the mount for any other program is refused (cap-std).
        with fails_with(ErrorCode.NOT_PERMITTED):
            fs.symlink_at(fs.root(), "/etc", "abs")
        assert not exists(fs, "abs")

    def test_symlink_cycle_is_loop(self, fs: Filesystem) -> None:
        fs.symlink_at(fs.root(), "b", "a")
        fs.symlink_at(fs.root(), "a", "b")
        with fails_with(ErrorCode.LOOP):
            fs.stat_at(fs.root(), FOLLOW, "a")
        with fails_with(ErrorCode.LOOP):
            fs.open_at(fs.root(), NOFOLLOW, "a/x", 0, READ)

    def test_forty_symlinks_resolve_and_forty_one_are_loop(self, fs: Filesystem) -> None:
        make_file(fs, "f", b"end")
        fs.symlink_at(fs.root(), "f", "l1")
        for n in range(2, 42):
            fs.symlink_at(fs.root(), f"l{n - 1}", f"l{n}")
        assert contents(fs, "l40") == b"end"
        with fails_with(ErrorCode.LOOP):
            fs.open_at(fs.root(), FOLLOW, "l41", 0, READ)

    # -- descriptor flags and data ---------------------------------------------------------------

    def test_read_without_read_flag_is_bad_descriptor(self, fs: Filesystem) -> None:
        make_file(fs, "f", b"data")
        fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, WRITE)
        with fails_with(ErrorCode.BAD_DESCRIPTOR):
            fs.read(fd, 4, 0)

    def test_write_without_write_flag_is_bad_descriptor(self, fs: Filesystem) -> None:
        make_file(fs, "f", b"data")
        fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, READ)
        with fails_with(ErrorCode.BAD_DESCRIPTOR):
            fs.write(fd, b"x", 0)
        with fails_with(ErrorCode.BAD_DESCRIPTOR):
            fs.append(fd, b"x")
        assert contents(fs, "f") == b"data"

    def test_reading_a_directory_descriptor_is_is_directory(self, fs: Filesystem) -> None:
        with fails_with(ErrorCode.IS_DIRECTORY):
            fs.read(open_dir(fs, "."), 10, 0)

    def test_writing_a_directory_descriptor_is_bad_descriptor(self, fs: Filesystem) -> None:
        # A directory is never open for writing, so this fails like any read-only descriptor.
        with fails_with(ErrorCode.BAD_DESCRIPTOR):
            fs.write(open_dir(fs, "."), b"x", 0)

    def test_reads_at_offsets_and_past_the_end(self, fs: Filesystem) -> None:
        make_file(fs, "f", b"0123456789")
        fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, READ)
        assert fs.read(fd, 3, 2) == b"234"
        assert fs.read(fd, 100, 8) == b"89"
        assert fs.read(fd, 5, 10) == b""
        assert fs.read(fd, 5, 1000) == b""
        assert fs.read(fd, 0, 0) == b""

    def test_write_overwrites_in_place(self, fs: Filesystem) -> None:
        make_file(fs, "f", b"0123456789")
        fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, RW)
        assert fs.write(fd, b"ab", 3) == 2
        assert fs.read(fd, 20, 0) == b"012ab56789"

    def test_write_past_the_end_fills_the_gap_with_zeros(self, fs: Filesystem) -> None:
        make_file(fs, "f", b"ab")
        fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, RW)
        fs.write(fd, b"z", 5)
        assert fs.read(fd, 10, 0) == b"ab\0\0\0z"
        assert fs.stat(fd).size == 6

    def test_append_writes_at_the_end(self, fs: Filesystem) -> None:
        make_file(fs, "f", b"start")
        fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, WRITE)
        assert fs.append(fd, b"-more") == 5
        assert fs.append(fd, b"!") == 1
        assert contents(fs, "f") == b"start-more!"

    def test_two_descriptors_see_each_others_writes(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        writer = fs.open_at(fs.root(), NOFOLLOW, "f", 0, WRITE)
        reader = fs.open_at(fs.root(), NOFOLLOW, "f", 0, READ)
        fs.write(writer, b"shared", 0)
        assert fs.read(reader, 10, 0) == b"shared"

    def test_unlinked_file_stays_usable_while_open(self, fs: Filesystem) -> None:
        make_file(fs, "f", b"still here")
        fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, RW)
        fs.unlink_file_at(fs.root(), "f")
        assert not exists(fs, "f")
        assert fs.read(fd, 20, 0) == b"still here"
        fs.append(fd, b"!")
        assert fs.read(fd, 20, 0) == b"still here!"
        assert fs.stat(fd).link_count == 0

    def test_set_size_grows_with_zeros_and_shrinks(self, fs: Filesystem) -> None:
        make_file(fs, "f", b"abc")
        fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, RW)
        fs.set_size(fd, 6)
        assert fs.read(fd, 10, 0) == b"abc\0\0\0"
        fs.set_size(fd, 1)
        assert fs.read(fd, 10, 0) == b"a"
        assert fs.stat(fd).size == 1

    # -- stat ------------------------------------------------------------------------------------

    def test_stat_of_a_file(self, fs: Filesystem) -> None:
        make_file(fs, "f", b"12345")
        st = fs.stat_at(fs.root(), NOFOLLOW, "f")
        assert (st.type, st.size, st.link_count) == (DescriptorType.REGULAR_FILE, 5, 1)

    def test_stat_at_describes_a_symlink_itself_without_follow(self, fs: Filesystem) -> None:
        make_file(fs, "target-file", b"12345")
        fs.symlink_at(fs.root(), "target-file", "link")
        st = fs.stat_at(fs.root(), NOFOLLOW, "link")
        assert (st.type, st.size) == (DescriptorType.SYMBOLIC_LINK, len("target-file"))

    def test_stat_at_describes_the_target_with_follow(self, fs: Filesystem) -> None:
        make_file(fs, "f", b"12345")
        fs.symlink_at(fs.root(), "f", "link")
        st = fs.stat_at(fs.root(), FOLLOW, "link")
        assert st.type == DescriptorType.REGULAR_FILE
        assert st.inode == fs.stat_at(fs.root(), NOFOLLOW, "f").inode

    def test_stat_at_dangling_symlink_with_follow_is_no_entry(self, fs: Filesystem) -> None:
        fs.symlink_at(fs.root(), "missing", "link")
        with fails_with(ErrorCode.NO_ENTRY):
            fs.stat_at(fs.root(), FOLLOW, "link")
        assert kind(fs, "link") == DescriptorType.SYMBOLIC_LINK

    def test_stat_at_trailing_slash_follows_a_symlink(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "d")
        make_file(fs, "f")
        fs.symlink_at(fs.root(), "d", "dlink")
        fs.symlink_at(fs.root(), "f", "flink")
        assert kind(fs, "dlink/") == DescriptorType.DIRECTORY
        with fails_with(ErrorCode.NOT_DIRECTORY):
            fs.stat_at(fs.root(), NOFOLLOW, "flink/")
        with fails_with(ErrorCode.NOT_DIRECTORY):
            fs.stat_at(fs.root(), NOFOLLOW, "f/")

    def test_stat_of_dot_is_the_descriptor_directory(self, fs: Filesystem) -> None:
        assert fs.stat_at(fs.root(), NOFOLLOW, ".").inode == fs.stat(fs.root()).inode

    # -- read_directory --------------------------------------------------------------------------

    def test_read_directory_lists_entries_with_types_and_no_dots(self, fs: Filesystem) -> None:
        make_file(fs, "file")
        fs.create_directory_at(fs.root(), "dir")
        fs.symlink_at(fs.root(), "file", "link")
        listed = {entry.name: entry.type for entry in fs.read_directory(fs.root())}
        assert listed == {
            "file": DescriptorType.REGULAR_FILE,
            "dir": DescriptorType.DIRECTORY,
            "link": DescriptorType.SYMBOLIC_LINK,
        }

    def test_read_directory_order_is_stable(self, fs: Filesystem) -> None:
        for name in ["m", "b", "z", "a", "q"]:
            make_file(fs, name)
        first = fs.read_directory(fs.root())
        assert fs.read_directory(fs.root()) == first

    def test_read_directory_inodes_match_stat(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        fs.create_directory_at(fs.root(), "d")
        for entry in fs.read_directory(fs.root()):
            assert entry.inode == fs.stat_at(fs.root(), NOFOLLOW, entry.name).inode

    def test_read_directory_of_a_file_is_not_directory(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, READ)
        with fails_with(ErrorCode.NOT_DIRECTORY):
            fs.read_directory(fd)

    # -- create_directory_at / remove_directory_at -----------------------------------------------

    def test_create_directory(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "d")
        fs.create_directory_at(fs.root(), "d/e/")
        assert kind(fs, "d/e") == DescriptorType.DIRECTORY
        assert names(fs, "d") == ["e"]

    def test_create_directory_over_anything_is_exist(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        fs.create_directory_at(fs.root(), "d")
        fs.symlink_at(fs.root(), "missing", "dangling")
        for path in ["f", "d", "dangling", "."]:
            with fails_with(ErrorCode.EXIST):
                fs.create_directory_at(fs.root(), path)
        assert not exists(fs, "missing")

    def test_create_directory_in_missing_parent_is_no_entry(self, fs: Filesystem) -> None:
        with fails_with(ErrorCode.NO_ENTRY):
            fs.create_directory_at(fs.root(), "missing/d")

    def test_create_directory_under_a_file_is_not_directory(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        with fails_with(ErrorCode.NOT_DIRECTORY):
            fs.create_directory_at(fs.root(), "f/d")

    def test_remove_empty_directory(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "d")
        fs.create_directory_at(fs.root(), "e")
        fs.remove_directory_at(fs.root(), "d")
        fs.remove_directory_at(fs.root(), "e/")
        assert names(fs) == []

    def test_remove_non_empty_directory_is_not_empty(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "d")
        make_file(fs, "d/f")
        with fails_with(ErrorCode.NOT_EMPTY):
            fs.remove_directory_at(fs.root(), "d")

    def test_remove_directory_of_a_file_or_symlink_is_not_directory(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        fs.create_directory_at(fs.root(), "d")
        fs.symlink_at(fs.root(), "d", "link")
        with fails_with(ErrorCode.NOT_DIRECTORY):
            fs.remove_directory_at(fs.root(), "f")
        with fails_with(ErrorCode.NOT_DIRECTORY):
            fs.remove_directory_at(fs.root(), "link")
        assert kind(fs, "d") == DescriptorType.DIRECTORY

    def test_remove_missing_directory_is_no_entry(self, fs: Filesystem) -> None:
        with fails_with(ErrorCode.NO_ENTRY):
            fs.remove_directory_at(fs.root(), "missing")

    def test_remove_dot_is_invalid(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "d")
        with fails_with(ErrorCode.INVALID):
            fs.remove_directory_at(fs.root(), "d/.")

    def test_final_dot_dot_names_the_parent_for_every_change(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "a")
        make_file(fs, "x")
        with fails_with(ErrorCode.NOT_EMPTY):
            fs.remove_directory_at(fs.root(), "a/..")
        with fails_with(ErrorCode.IS_DIRECTORY):
            fs.unlink_file_at(fs.root(), "a/..")
        with fails_with(ErrorCode.EXIST):
            fs.create_directory_at(fs.root(), "a/..")
        with fails_with(ErrorCode.EXIST):
            fs.symlink_at(fs.root(), "x", "a/..")
        with fails_with(ErrorCode.BUSY):
            fs.rename_at(fs.root(), "a/..", fs.root(), "b")
        with fails_with(ErrorCode.BUSY):
            fs.rename_at(fs.root(), "x", fs.root(), "a/.")
        assert names(fs) == ["a", "x"]

    # -- unlink_file_at --------------------------------------------------------------------------

    def test_unlink_removes_a_file(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        fs.unlink_file_at(fs.root(), "f")
        assert names(fs) == []

    def test_unlink_a_symlink_removes_the_link_not_the_target(self, fs: Filesystem) -> None:
        make_file(fs, "f", b"kept")
        fs.symlink_at(fs.root(), "f", "link")
        fs.unlink_file_at(fs.root(), "link")
        assert names(fs) == ["f"]
        assert contents(fs, "f") == b"kept"

    def test_unlink_a_directory_is_is_directory(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "d")
        with fails_with(ErrorCode.IS_DIRECTORY):
            fs.unlink_file_at(fs.root(), "d")
        with fails_with(ErrorCode.IS_DIRECTORY):
            fs.unlink_file_at(fs.root(), "d/")

    def test_unlink_with_trailing_slash_on_a_file_is_not_directory(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        with fails_with(ErrorCode.NOT_DIRECTORY):
            fs.unlink_file_at(fs.root(), "f/")
        assert exists(fs, "f")

    def test_unlink_missing_is_no_entry(self, fs: Filesystem) -> None:
        with fails_with(ErrorCode.NO_ENTRY):
            fs.unlink_file_at(fs.root(), "missing")

    # -- rename_at -------------------------------------------------------------------------------

    def test_rename_moves_a_file(self, fs: Filesystem) -> None:
        make_file(fs, "a", b"moved")
        fs.create_directory_at(fs.root(), "d")
        inode = fs.stat_at(fs.root(), NOFOLLOW, "a").inode
        fs.rename_at(fs.root(), "a", fs.root(), "d/b")
        assert names(fs) == ["d"]
        assert contents(fs, "d/b") == b"moved"
        assert fs.stat_at(fs.root(), NOFOLLOW, "d/b").inode == inode

    def test_rename_between_descriptors(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "src")
        fs.create_directory_at(fs.root(), "dst")
        make_file(fs, "src/f", b"x")
        fs.rename_at(open_dir(fs, "src"), "f", open_dir(fs, "dst"), "g")
        assert names(fs, "src") == []
        assert contents(fs, "dst/g") == b"x"

    def test_rename_replaces_a_file_whose_open_descriptor_keeps_old_data(
        self, fs: Filesystem
    ) -> None:
        make_file(fs, "new", b"new data")
        make_file(fs, "old", b"old data")
        held = fs.open_at(fs.root(), NOFOLLOW, "old", 0, READ)
        fs.rename_at(fs.root(), "new", fs.root(), "old")
        assert names(fs) == ["old"]
        assert contents(fs, "old") == b"new data"
        assert fs.read(held, 20, 0) == b"old data"
        assert fs.stat(held).link_count == 0

    def test_rename_directory_replaces_an_empty_directory(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "a")
        make_file(fs, "a/f", b"inside")
        fs.create_directory_at(fs.root(), "b")
        fs.rename_at(fs.root(), "a", fs.root(), "b")
        assert names(fs) == ["b"]
        assert contents(fs, "b/f") == b"inside"

    def test_rename_onto_a_non_empty_directory_is_not_empty(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "a")
        fs.create_directory_at(fs.root(), "b")
        make_file(fs, "b/f")
        with fails_with(ErrorCode.NOT_EMPTY):
            fs.rename_at(fs.root(), "a", fs.root(), "b")

    def test_rename_file_onto_a_directory_is_is_directory(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        fs.create_directory_at(fs.root(), "d")
        with fails_with(ErrorCode.IS_DIRECTORY):
            fs.rename_at(fs.root(), "f", fs.root(), "d")

    def test_rename_directory_onto_a_file_is_not_directory(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        fs.create_directory_at(fs.root(), "d")
        with fails_with(ErrorCode.NOT_DIRECTORY):
            fs.rename_at(fs.root(), "d", fs.root(), "f")

    def test_rename_directory_into_its_own_subtree_is_invalid(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "a")
        fs.create_directory_at(fs.root(), "a/b")
        with fails_with(ErrorCode.INVALID):
            fs.rename_at(fs.root(), "a", fs.root(), "a/b/c")
        with fails_with(ErrorCode.INVALID):
            fs.rename_at(fs.root(), "a", open_dir(fs, "a/b"), "c")

    def test_rename_onto_an_ancestor_of_the_source_is_not_empty(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "a")
        make_file(fs, "a/f")
        with fails_with(ErrorCode.NOT_EMPTY):
            fs.rename_at(fs.root(), "a/f", fs.root(), "a")

    def test_rename_from_a_file_descriptor_is_not_directory(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        file = fs.open_at(fs.root(), NOFOLLOW, "f", 0, READ)
        with fails_with(ErrorCode.NOT_DIRECTORY):
            fs.rename_at(file, "x", fs.root(), "y")
        # The old path is resolved first, so its descriptor fails before the new path's escape.
        with fails_with(ErrorCode.NOT_DIRECTORY):
            fs.rename_at(file, "x", fs.root(), "../y")

    def test_rename_missing_is_no_entry(self, fs: Filesystem) -> None:
        with fails_with(ErrorCode.NO_ENTRY):
            fs.rename_at(fs.root(), "missing", fs.root(), "x")

    def test_rename_between_hard_links_of_one_file_does_nothing(self, fs: Filesystem) -> None:
        make_file(fs, "a", b"same")
        fs.link_at(fs.root(), NOFOLLOW, "a", fs.root(), "b")
        fs.rename_at(fs.root(), "a", fs.root(), "b")
        assert names(fs) == ["a", "b"]
        assert fs.stat_at(fs.root(), NOFOLLOW, "a").link_count == 2

    def test_rename_file_with_trailing_slash_is_not_directory(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        with fails_with(ErrorCode.NOT_DIRECTORY):
            fs.rename_at(fs.root(), "f/", fs.root(), "g")
        with fails_with(ErrorCode.NOT_DIRECTORY):
            fs.rename_at(fs.root(), "f", fs.root(), "g/")
        assert names(fs) == ["f"]

    def test_rename_moves_a_symlink_not_its_target(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        fs.symlink_at(fs.root(), "f", "link")
        fs.rename_at(fs.root(), "link", fs.root(), "moved")
        assert fs.readlink_at(fs.root(), "moved") == "f"
        assert names(fs) == ["f", "moved"]

    def test_renamed_open_file_keeps_its_descriptor(self, fs: Filesystem) -> None:
        make_file(fs, "a", b"data")
        fd = fs.open_at(fs.root(), NOFOLLOW, "a", 0, RW)
        fs.rename_at(fs.root(), "a", fs.root(), "b")
        fs.append(fd, b"+")
        assert contents(fs, "b") == b"data+"

    # -- symlinks --------------------------------------------------------------------------------

    def test_readlink_returns_the_target_text(self, fs: Filesystem) -> None:
        fs.symlink_at(fs.root(), "some/where/../else", "link")
        assert fs.readlink_at(fs.root(), "link") == "some/where/../else"

    def test_symlink_over_an_existing_name_is_exist(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        fs.symlink_at(fs.root(), "x", "dangling")
        with fails_with(ErrorCode.EXIST):
            fs.symlink_at(fs.root(), "x", "f")
        with fails_with(ErrorCode.EXIST):
            fs.symlink_at(fs.root(), "y", "dangling")
        assert fs.readlink_at(fs.root(), "dangling") == "x"

    def test_symlink_with_empty_target_is_no_entry(self, fs: Filesystem) -> None:
        with fails_with(ErrorCode.NO_ENTRY):
            fs.symlink_at(fs.root(), "", "link")

    def test_symlink_named_with_trailing_slash_is_no_entry(self, fs: Filesystem) -> None:
        with fails_with(ErrorCode.NO_ENTRY):
            fs.symlink_at(fs.root(), "x", "link/")

    def test_readlink_of_a_non_symlink_is_invalid(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        with fails_with(ErrorCode.INVALID):
            fs.readlink_at(fs.root(), "f")
        with fails_with(ErrorCode.INVALID):
            fs.readlink_at(fs.root(), ".")

    def test_readlink_missing_is_no_entry(self, fs: Filesystem) -> None:
        with fails_with(ErrorCode.NO_ENTRY):
            fs.readlink_at(fs.root(), "missing")

    # -- hard links ------------------------------------------------------------------------------

    def test_hard_link_shares_contents_and_counts_links(self, fs: Filesystem) -> None:
        make_file(fs, "a", b"one")
        fs.link_at(fs.root(), NOFOLLOW, "a", fs.root(), "b")
        a = fs.stat_at(fs.root(), NOFOLLOW, "a")
        assert fs.stat_at(fs.root(), NOFOLLOW, "b").inode == a.inode
        assert a.link_count == 2
        fd = fs.open_at(fs.root(), NOFOLLOW, "b", 0, WRITE)
        fs.append(fd, b"+two")
        assert contents(fs, "a") == b"one+two"
        fs.unlink_file_at(fs.root(), "a")
        assert fs.stat_at(fs.root(), NOFOLLOW, "b").link_count == 1

    def test_hard_link_across_descriptors(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "d")
        make_file(fs, "f", b"x")
        fs.link_at(fs.root(), NOFOLLOW, "f", open_dir(fs, "d"), "g")
        assert contents(fs, "d/g") == b"x"

    def test_hard_link_to_a_directory_is_not_permitted(self, fs: Filesystem) -> None:
        fs.create_directory_at(fs.root(), "d")
        with fails_with(ErrorCode.NOT_PERMITTED):
            fs.link_at(fs.root(), NOFOLLOW, "d", fs.root(), "e")

    def test_hard_link_over_an_existing_name_is_exist(self, fs: Filesystem) -> None:
        make_file(fs, "a")
        make_file(fs, "b")
        with fails_with(ErrorCode.EXIST):
            fs.link_at(fs.root(), NOFOLLOW, "a", fs.root(), "b")

    def test_hard_link_of_missing_is_no_entry(self, fs: Filesystem) -> None:
        with fails_with(ErrorCode.NO_ENTRY):
            fs.link_at(fs.root(), NOFOLLOW, "missing", fs.root(), "b")

    def test_hard_link_to_a_symlink_follows_only_when_asked(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        fs.symlink_at(fs.root(), "f", "link")
        fs.link_at(fs.root(), NOFOLLOW, "link", fs.root(), "same-link")
        fs.link_at(fs.root(), FOLLOW, "link", fs.root(), "same-file")
        assert kind(fs, "same-link") == DescriptorType.SYMBOLIC_LINK
        assert fs.readlink_at(fs.root(), "same-link") == "f"
        assert kind(fs, "same-file") == DescriptorType.REGULAR_FILE
        assert fs.stat_at(fs.root(), NOFOLLOW, "f").link_count == 2

    # -- timestamps ------------------------------------------------------------------------------

    def test_set_times_sets_exact_nanoseconds(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, RW)
        fs.set_times(fd, 1_000 * SECOND + 123, 2_000 * SECOND + 456)
        st = fs.stat(fd)
        assert (st.data_access_timestamp, st.data_modification_timestamp) == (
            1_000 * SECOND + 123,
            2_000 * SECOND + 456,
        )

    def test_set_times_none_leaves_a_timestamp_alone(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        fs.set_times_at(fs.root(), NOFOLLOW, "f", 5 * SECOND, 6 * SECOND)
        fs.set_times_at(fs.root(), NOFOLLOW, "f", None, 7 * SECOND)
        st = fs.stat_at(fs.root(), NOFOLLOW, "f")
        assert (st.data_access_timestamp, st.data_modification_timestamp) == (
            5 * SECOND,
            7 * SECOND,
        )

    def test_set_times_now_uses_the_current_time(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        fs.set_times_at(fs.root(), NOFOLLOW, "f", SECOND, SECOND)
        fs.set_times_at(fs.root(), NOFOLLOW, "f", "now", None)
        st = fs.stat_at(fs.root(), NOFOLLOW, "f")
        assert st.data_access_timestamp is not None
        assert abs(st.data_access_timestamp - time.time_ns()) < 10 * SECOND
        assert st.data_modification_timestamp == SECOND

    def test_set_times_at_without_follow_changes_the_symlink_only(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        fs.symlink_at(fs.root(), "f", "link")
        fs.set_times_at(fs.root(), FOLLOW, "link", SECOND, SECOND)
        fs.set_times_at(fs.root(), NOFOLLOW, "link", 3 * SECOND, 3 * SECOND)
        assert fs.stat_at(fs.root(), NOFOLLOW, "f").data_modification_timestamp == SECOND
        assert fs.stat_at(fs.root(), NOFOLLOW, "link").data_modification_timestamp == 3 * SECOND

    def test_set_times_at_changing_nothing_does_not_look_at_the_final_name(
        self, fs: Filesystem
    ) -> None:
        # As cap-std (and so wasmtime) does it: resolve the parent, then utimensat, which
        # returns before it looks at the name when both times are omitted.
        fs.set_times_at(fs.root(), NOFOLLOW, "missing", None, None)
        with fails_with(ErrorCode.NO_ENTRY):
            fs.set_times_at(fs.root(), NOFOLLOW, "missing/x", None, None)
        with fails_with(ErrorCode.NO_ENTRY):
            fs.set_times_at(fs.root(), FOLLOW, "missing", None, None)

    def test_set_times_at_from_a_file_descriptor_is_not_directory(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        file = fs.open_at(fs.root(), NOFOLLOW, "f", 0, READ)
        for times in [(SECOND, SECOND), (None, None)]:
            with fails_with(ErrorCode.NOT_DIRECTORY):
                fs.set_times_at(file, NOFOLLOW, "x", *times)

    def test_write_updates_the_modification_time(self, fs: Filesystem) -> None:
        make_file(fs, "f")
        fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, RW)
        fs.set_times(fd, SECOND, SECOND)
        fs.write(fd, b"x", 0)
        modified = fs.stat(fd).data_modification_timestamp
        assert modified is not None and modified > SECOND

    def test_creating_an_entry_updates_the_directory_modification_time(
        self, fs: Filesystem
    ) -> None:
        fs.create_directory_at(fs.root(), "d")
        fs.set_times_at(fs.root(), NOFOLLOW, "d", SECOND, SECOND)
        make_file(fs, "d/f")
        modified = fs.stat_at(fs.root(), NOFOLLOW, "d").data_modification_timestamp
        assert modified is not None and modified > SECOND

    # -- sync, advise ----------------------------------------------------------------------------

    def test_sync_and_advise_succeed_on_an_open_file(self, fs: Filesystem) -> None:
        make_file(fs, "f", b"x")
        fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, RW)
        fs.sync(fd)
        fs.sync_data(fd)
        fs.advise(fd, 0, 1, Advice.SEQUENTIAL)
        with fails_with(ErrorCode.BAD_DESCRIPTOR):
            fs.sync(987_654)
        with fails_with(ErrorCode.BAD_DESCRIPTOR):
            fs.advise(987_654, 0, 1, Advice.NORMAL)
