"""HostDirBackend behaviour of its own: construction, read-only mounts, host file semantics.

The shared contract (`tests/backend_contract.py`) runs against this backend in
`tests/test_backend_contract.py` with the kernel's openat2; here it runs once more with the
manual resolution a kernel without openat2 gets, so both strategies meet the same contract.
"""

from __future__ import annotations

import errno
import os
import random
import socket
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, suppress
from pathlib import Path

import pytest

from tests.backend_contract import FilesystemContract
from tracer.backend import (
    Advice,
    DescriptorFlags,
    DescriptorType,
    Filesystem,
    OpenFlags,
    PathFlags,
)
from tracer.backends import _openat2
from tracer.backends.hostdir import HostDirBackend
from tracer.errors import ErrorCode, WasiError

READ = DescriptorFlags.READ
WRITE = DescriptorFlags.WRITE
RW = READ | WRITE
FOLLOW = PathFlags.SYMLINK_FOLLOW
NOFOLLOW = 0
CREATE = OpenFlags.CREATE
TRUNCATE = OpenFlags.TRUNCATE
DIRECTORY = OpenFlags.DIRECTORY
GIB = 1 << 30


def fails(code: ErrorCode) -> AbstractContextManager[pytest.ExceptionInfo[WasiError]]:
    return pytest.raises(WasiError, match=f"^{code.value}")


@pytest.fixture
def force_manual_resolution(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make openat2 report ENOSYS, as a kernel older than 5.6 (or a seccomp filter) would."""

    def no_openat2(dirfd: int, path: bytes, flags: int, mode: int) -> int:
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))

    monkeypatch.setattr(_openat2, "syscall_openat2", no_openat2)
    _openat2.reset_probe()
    yield
    _openat2.reset_probe()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def fs(root: Path) -> Iterator[HostDirBackend]:
    with HostDirBackend(root) as backend:
        yield backend


class TestContractWithManualResolution(FilesystemContract):
    @pytest.fixture
    def fs(self, tmp_path: Path, force_manual_resolution: None) -> Iterator[Filesystem]:
        root = tmp_path / "root"
        root.mkdir()
        with HostDirBackend(root) as backend:
            assert backend.resolution == "manual"
            yield backend
        assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]


# -- construction ------------------------------------------------------------------------------


def test_a_missing_directory_is_refused_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as info:
        HostDirBackend(missing)
    assert info.value.filename == str(missing)
    assert "does not exist" in str(info.value)


def test_a_file_is_refused_as_not_a_directory(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_bytes(b"")
    with pytest.raises(NotADirectoryError) as info:
        HostDirBackend(str(file))
    assert info.value.filename == str(file)


def test_a_symlink_to_a_directory_mounts_its_target(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_bytes(b"x")
    os.symlink("real", tmp_path / "link")
    with HostDirBackend(tmp_path / "link") as fs:
        assert [e.name for e in fs.read_directory(fs.root())] == ["f"]


def test_this_kernel_resolves_with_openat2(fs: HostDirBackend) -> None:
    assert fs.resolution == "openat2"


def test_without_openat2_the_manual_resolution_is_chosen(
    root: Path, force_manual_resolution: None
) -> None:
    with HostDirBackend(root) as fs:
        assert fs.resolution == "manual"


# -- descriptors -------------------------------------------------------------------------------


def _open_host_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_descriptors_are_small_and_reused_lowest_first(fs: HostDirBackend, root: Path) -> None:
    (root / "f").write_bytes(b"")
    assert fs.root() == 0
    fds = [fs.open_at(fs.root(), NOFOLLOW, "f", 0, READ) for _ in range(3)]
    assert fds == [1, 2, 3]
    fs.close(2)
    fs.close(1)
    assert fs.open_at(fs.root(), NOFOLLOW, "f", 0, READ) == 1


def test_closing_releases_the_host_descriptor(fs: HostDirBackend, root: Path) -> None:
    (root / "f").write_bytes(b"")
    before = _open_host_fds()
    fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, READ)
    assert _open_host_fds() == before + 1
    fs.close(fd)
    assert _open_host_fds() == before


@pytest.mark.parametrize("manual", [False, True], ids=["openat2", "manual"])
def test_no_call_leaks_host_descriptors_whatever_the_path(
    root: Path, manual: bool, request: pytest.FixtureRequest
) -> None:
    if manual:
        request.getfixturevalue("force_manual_resolution")
    (root / "a").mkdir()
    (root / "f").write_bytes(b"")
    os.symlink("a", root / "l")
    os.symlink("..", root / "up")
    os.symlink("loop", root / "loop")
    os.symlink("/", root / "abs")
    pick = random.Random(7)
    with HostDirBackend(root) as fs:
        before = _open_host_fds()
        for _ in range(1500):
            with suppress(WasiError):
                _random_call(fs, pick)
        assert _open_host_fds() == before


def _random_call(fs: HostDirBackend, pick: random.Random) -> None:
    """One operation on a random short path over links that loop, escape or lead inside."""
    names = ["a", "f", "l", "up", "loop", "abs", ".", "..", "x"]
    path = "/".join(pick.choice(names) for _ in range(pick.randint(1, 3)))
    path += pick.choice(["", "/"])
    follow = pick.choice([NOFOLLOW, FOLLOW])
    top = fs.root()
    operation = pick.randrange(10)
    if operation == 0:
        fs.close(fs.open_at(top, follow, path, pick.choice([0, 1, 8]), READ))
    elif operation == 1:
        fs.stat_at(top, follow, path)
    elif operation == 2:
        fs.readlink_at(top, path)
    elif operation == 3:
        fs.set_times_at(top, follow, path, None, None)
    elif operation == 4:
        fs.link_at(top, follow, path, top, "a/twin")
    elif operation == 5:
        fs.unlink_file_at(top, pick.choice(["a/twin", path]))
    elif operation == 6:
        fs.rename_at(top, path, top, pick.choice(names) + "/..")
    elif operation == 7:
        fs.create_directory_at(top, path + "/made")
    elif operation == 8:
        fs.remove_directory_at(top, path)
    else:
        fs.symlink_at(top, "a", path)


def test_closing_the_root_keeps_it_open(fs: HostDirBackend) -> None:
    fs.close(fs.root())
    assert fs.stat(fs.root()).type == DescriptorType.DIRECTORY


def test_close_all_closes_every_host_descriptor(root: Path) -> None:
    (root / "f").write_bytes(b"")
    before = _open_host_fds()
    fs = HostDirBackend(root)
    fs.open_at(fs.root(), NOFOLLOW, "f", 0, READ)
    fs.close_all()
    assert _open_host_fds() == before
    with fails(ErrorCode.BAD_DESCRIPTOR):
        fs.stat(fs.root())


# -- read-only mounts --------------------------------------------------------------------------


def _tree(top: Path) -> dict[str, tuple[object, ...]]:
    found: dict[str, tuple[object, ...]] = {}
    for path in sorted(top.rglob("*")):
        st = path.lstat()
        body = path.read_bytes() if path.is_file() and not path.is_symlink() else None
        found[str(path.relative_to(top))] = (body, st.st_mode, st.st_mtime_ns, st.st_ctime_ns)
    return found


def test_a_read_only_mount_refuses_every_change_without_touching_the_host(root: Path) -> None:
    (root / "f").write_bytes(b"data")
    (root / "d").mkdir()
    os.symlink("f", root / "link")
    before = _tree(root)
    root_times = os.stat(root).st_mtime_ns
    with HostDirBackend(root, read_only=True) as fs:
        top = fs.root()
        reader = fs.open_at(top, NOFOLLOW, "f", 0, READ)
        refused: list[Callable[[], object]] = [
            lambda: fs.open_at(top, NOFOLLOW, "f", 0, WRITE),
            lambda: fs.open_at(top, NOFOLLOW, "f", 0, RW),
            lambda: fs.open_at(top, NOFOLLOW, "new", CREATE, READ),
            lambda: fs.open_at(top, NOFOLLOW, "f", TRUNCATE, READ),
            lambda: fs.set_size(reader, 0),
            lambda: fs.set_times(reader, 1, 1),
            lambda: fs.set_times(top, None, "now"),
            lambda: fs.set_times_at(top, NOFOLLOW, "f", 1, 1),
            lambda: fs.create_directory_at(top, "newdir"),
            lambda: fs.remove_directory_at(top, "d"),
            lambda: fs.unlink_file_at(top, "f"),
            lambda: fs.rename_at(top, "f", top, "g"),
            lambda: fs.symlink_at(top, "f", "link2"),
            lambda: fs.link_at(top, NOFOLLOW, "f", top, "hard"),
        ]
        for attempt in refused:
            with fails(ErrorCode.NOT_PERMITTED):
                attempt()
        # Reading still works.
        assert fs.read(reader, 10, 0) == b"data"
        assert fs.readlink_at(top, "link") == "f"
        assert sorted(e.name for e in fs.read_directory(top)) == ["d", "f", "link"]
        assert fs.stat_at(top, FOLLOW, "link").size == 4
    assert _tree(root) == before
    assert os.stat(root).st_mtime_ns == root_times


def test_a_read_only_mount_still_says_not_directory_for_a_file_descriptor(root: Path) -> None:
    (root / "f").write_bytes(b"")
    with HostDirBackend(root, read_only=True) as fs:
        fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, READ)
        with fails(ErrorCode.NOT_DIRECTORY):
            fs.create_directory_at(fd, "x")


# -- data ----------------------------------------------------------------------------------------


def test_large_sparse_files_read_and_write_past_four_gibibytes(
    fs: HostDirBackend, root: Path
) -> None:
    fd = fs.open_at(fs.root(), NOFOLLOW, "big", CREATE, RW)
    assert fs.write(fd, b"tail", 5 * GIB) == 4
    assert fs.stat(fd).size == 5 * GIB + 4
    assert fs.read(fd, 10, 5 * GIB - 2) == b"\0\0tail"
    assert fs.read(fd, 3, GIB) == b"\0\0\0"
    fs.set_size(fd, 6 * GIB)
    assert os.stat(root / "big").st_size == 6 * GIB


def test_reads_past_the_end_are_empty(fs: HostDirBackend, root: Path) -> None:
    (root / "f").write_bytes(b"0123456789")
    fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, READ)
    assert fs.read(fd, 5, 8) == b"89"
    assert fs.read(fd, 5, 10) == b""
    assert fs.read(fd, 5, 10 * GIB) == b""
    assert fs.read(fd, 5, 2**64 - 1) == b""
    with fails(ErrorCode.INVALID):
        fs.read(fd, 5, -1)


def test_writing_beyond_the_largest_offset_is_file_too_large(fs: HostDirBackend) -> None:
    fd = fs.open_at(fs.root(), NOFOLLOW, "f", CREATE, RW)
    with fails(ErrorCode.FILE_TOO_LARGE):
        fs.write(fd, b"x", 2**63)
    with fails(ErrorCode.FILE_TOO_LARGE):
        fs.set_size(fd, 2**63)


def test_append_writes_at_the_end_whatever_was_written_where(
    fs: HostDirBackend, root: Path
) -> None:
    fd = fs.open_at(fs.root(), NOFOLLOW, "log", CREATE, RW)
    assert fs.append(fd, b"one ") == 4
    assert fs.write(fd, b"ONE", 0) == 3  # a positioned write is not turned into an append
    assert fs.append(fd, b"two ") == 4
    fs.set_size(fd, 2)
    assert fs.append(fd, b"|three") == 6
    assert (root / "log").read_bytes() == b"ON|three"


def test_appends_from_two_descriptors_and_the_host_never_overwrite(
    fs: HostDirBackend, root: Path
) -> None:
    first = fs.open_at(fs.root(), NOFOLLOW, "log", CREATE, WRITE)
    second = fs.open_at(fs.root(), NOFOLLOW, "log", 0, WRITE)
    fs.append(first, b"a")
    fs.append(second, b"b")
    with open(root / "log", "ab") as host:
        host.write(b"c")
    fs.append(first, b"d")
    assert (root / "log").read_bytes() == b"abcd"


def test_append_needs_a_writable_descriptor(fs: HostDirBackend, root: Path) -> None:
    (root / "f").write_bytes(b"x")
    fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, READ)
    with fails(ErrorCode.BAD_DESCRIPTOR):
        fs.append(fd, b"y")
    assert (root / "f").read_bytes() == b"x"


def test_create_without_write_gives_a_descriptor_that_cannot_write(
    fs: HostDirBackend, root: Path
) -> None:
    fd = fs.open_at(fs.root(), NOFOLLOW, "f", CREATE, READ)
    assert (root / "f").exists()
    with fails(ErrorCode.BAD_DESCRIPTOR):
        fs.write(fd, b"x", 0)
    with fails(ErrorCode.INVALID):
        fs.set_size(fd, 1)


def test_synchronized_open_flags_reach_the_host(fs: HostDirBackend, root: Path) -> None:
    import fcntl

    flags = DescriptorFlags.WRITE | DescriptorFlags.FILE_INTEGRITY_SYNC
    fd = fs.open_at(fs.root(), NOFOLLOW, "f", CREATE, flags)
    host_flags = fcntl.fcntl(fs._table[fd].fd, fcntl.F_GETFL)
    assert host_flags & os.O_SYNC == os.O_SYNC
    assert fs.write(fd, b"durable", 0) == 7


# -- metadata and directories --------------------------------------------------------------------


def test_stat_reports_the_host_inode_device_and_nanosecond_times(
    fs: HostDirBackend, root: Path
) -> None:
    (root / "f").write_bytes(b"abc")
    os.utime(root / "f", ns=(1_000_000_001, 2_000_000_002))
    host = os.stat(root / "f")
    st = fs.stat_at(fs.root(), NOFOLLOW, "f")
    assert (st.device, st.inode, st.size, st.link_count) == (
        host.st_dev,
        host.st_ino,
        3,
        1,
    )
    assert (st.data_access_timestamp, st.data_modification_timestamp) == (
        1_000_000_001,
        2_000_000_002,
    )
    assert st.status_change_timestamp == host.st_ctime_ns


def test_set_times_can_leave_one_time_alone_and_set_the_other_to_now(
    fs: HostDirBackend, root: Path
) -> None:
    (root / "f").write_bytes(b"")
    os.utime(root / "f", ns=(5, 6))
    fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, READ)
    fs.set_times(fd, None, "now")
    host = os.stat(root / "f")
    assert host.st_atime_ns == 5
    assert host.st_mtime_ns > 6


def test_special_files_report_their_types(fs: HostDirBackend, root: Path) -> None:
    os.mkfifo(root / "fifo")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "sock"))
        types = {e.name: e.type for e in fs.read_directory(fs.root())}
        assert types == {"fifo": DescriptorType.FIFO, "sock": DescriptorType.SOCKET}
        assert fs.stat_at(fs.root(), NOFOLLOW, "sock").type == DescriptorType.SOCKET
    assert fs.stat_at(fs.root(), NOFOLLOW, "fifo").type == DescriptorType.FIFO


def test_read_directory_is_stable_and_carries_inodes(fs: HostDirBackend, root: Path) -> None:
    for name in ("b", "a", "c", "zz", "m"):
        (root / name).write_bytes(b"")
    first = fs.read_directory(fs.root())
    assert fs.read_directory(fs.root()) == first
    assert {e.name: e.inode for e in first} == {
        name: os.stat(root / name).st_ino for name in ("a", "b", "c", "m", "zz")
    }


def test_names_that_are_not_utf8_are_an_illegal_byte_sequence(
    fs: HostDirBackend, root: Path
) -> None:
    os.close(os.open(os.fsencode(root) + b"/bad-\xff", os.O_CREAT | os.O_WRONLY))
    with fails(ErrorCode.ILLEGAL_BYTE_SEQUENCE):
        fs.read_directory(fs.root())
    os.symlink(b"target-\xfe", os.fsencode(root) + b"/link")
    with fails(ErrorCode.ILLEGAL_BYTE_SEQUENCE):
        fs.readlink_at(fs.root(), "link")


def test_advise_and_sync_work_on_files_and_directories(fs: HostDirBackend, root: Path) -> None:
    (root / "f").write_bytes(b"x")
    fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, RW)
    for descriptor in (fd, fs.root()):
        fs.advise(descriptor, 0, 0, Advice.WILL_NEED)
        fs.sync(descriptor)
        fs.sync_data(descriptor)
    with fails(ErrorCode.INVALID):
        fs.advise(fd, -1, 0, Advice.NORMAL)


def test_hard_link_following_a_symlink_links_its_target(fs: HostDirBackend, root: Path) -> None:
    (root / "d").mkdir()
    (root / "d" / "f").write_bytes(b"x")
    os.symlink("d/f", root / "link")
    fs.link_at(fs.root(), FOLLOW, "link", fs.root(), "d/twin")
    assert os.stat(root / "d" / "twin").st_ino == os.stat(root / "d" / "f").st_ino
    assert os.stat(root / "d" / "f").st_nlink == 2


@pytest.mark.parametrize("manual", [False, True])
def test_trailing_slashes_follow_linux(
    root: Path, manual: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if manual:
        monkeypatch.setattr(
            _openat2,
            "syscall_openat2",
            lambda *args: (_ for _ in ()).throw(OSError(errno.ENOSYS, "no openat2")),
        )
    _openat2.reset_probe()
    try:
        (root / "d").mkdir()
        (root / "f").write_bytes(b"")
        os.symlink("d", root / "ld")
        with HostDirBackend(root) as fs:
            top = fs.root()
            assert fs.stat_at(top, NOFOLLOW, "ld/").type == DescriptorType.DIRECTORY
            with fails(ErrorCode.NOT_DIRECTORY):
                fs.open_at(top, NOFOLLOW, "f/", 0, READ)
            with fails(ErrorCode.IS_DIRECTORY):
                fs.unlink_file_at(top, "d/")
            with fails(ErrorCode.NOT_DIRECTORY):
                fs.unlink_file_at(top, "f/")
            with fails(ErrorCode.NOT_DIRECTORY):
                fs.remove_directory_at(top, "ld/")
            with fails(ErrorCode.NOT_DIRECTORY):
                fs.rename_at(top, "f/", top, "g")
            with fails(ErrorCode.NO_ENTRY):
                fs.symlink_at(top, "x", "new/")
            fs.create_directory_at(top, "e/")
            fs.rename_at(top, "e/", top, "e2/")
            fs.remove_directory_at(top, "e2/")
            assert sorted(os.listdir(root)) == ["d", "f", "ld"]
    finally:
        _openat2.reset_probe()


# -- rarely taken paths ------------------------------------------------------------------------


def test_openat2_again_after_a_racing_rename_is_retried(
    fs: HostDirBackend, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (root / "f").write_bytes(b"x")
    real = _openat2.syscall_openat2
    failures = iter([errno.EAGAIN, errno.EAGAIN])

    def flaky(dirfd: int, path: bytes, flags: int, mode: int) -> int:
        code = next(failures, None)
        if code is not None:
            raise OSError(code, os.strerror(code))
        return real(dirfd, path, flags, mode)

    monkeypatch.setattr(_openat2, "syscall_openat2", flaky)
    fd = fs.open_at(fs.root(), NOFOLLOW, "f", 0, READ)
    assert fs.read(fd, 1, 0) == b"x"


def test_openat2_that_keeps_saying_again_falls_back_to_the_manual_walk(
    fs: HostDirBackend, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (root / "d").mkdir()
    (root / "d" / "f").write_bytes(b"x")
    calls = []

    def always_again(dirfd: int, path: bytes, flags: int, mode: int) -> int:
        calls.append(path)
        raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))

    monkeypatch.setattr(_openat2, "syscall_openat2", always_again)
    fd = fs.open_at(fs.root(), NOFOLLOW, "d/f", 0, READ)
    assert fs.read(fd, 1, 0) == b"x"
    assert len(calls) > 1
    with fails(ErrorCode.NOT_PERMITTED):
        fs.open_at(fs.root(), NOFOLLOW, "d/../../x", 0, READ)


def test_set_times_through_procfs_where_utimensat_lacks_empty_paths(
    fs: HostDirBackend, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (root / "f").write_bytes(b"")
    os.symlink("f", root / "link")
    real = _openat2.utimensat

    def old_kernel(
        dirfd: int, path: bytes, atime: _openat2.Timespec, mtime: _openat2.Timespec, flags: int
    ) -> None:
        if flags & _openat2.AT_EMPTY_PATH:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        real(dirfd, path, atime, mtime, flags)

    monkeypatch.setattr(_openat2, "utimensat", old_kernel)
    fs.set_times_at(fs.root(), FOLLOW, "link", 3_000_000_007, 4_000_000_009)
    host = os.stat(root / "f")
    assert (host.st_atime_ns, host.st_mtime_ns) == (3_000_000_007, 4_000_000_009)


def test_hard_link_following_a_symlink_without_procfs(
    fs: HostDirBackend, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.geteuid() != 0:
        pytest.skip("linkat with AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH")
    (root / "f").write_bytes(b"x")
    os.symlink("f", root / "link")

    def no_procfs(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError(errno.ENOENT, "no /proc here")

    monkeypatch.setattr(os, "link", no_procfs)
    monkeypatch.setattr(os.path, "isdir", lambda path: False)
    fs.link_at(fs.root(), FOLLOW, "link", fs.root(), "twin")
    monkeypatch.undo()
    assert os.stat(root / "twin").st_ino == os.stat(root / "f").st_ino
