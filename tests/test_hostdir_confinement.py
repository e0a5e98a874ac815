"""A guest of `HostDirBackend` never reaches outside its directory: a corpus of escape attempts.

Every test runs twice, once with the kernel confining lookups (openat2) and once with the manual
walk the backend uses where openat2 is missing (forced by making the syscall report ENOSYS).

The world: `tmp/root` is mounted; beside it are `tmp/sentinel/keep` and `tmp/secret`. Each
attempt must fail with exactly the expected code, and afterwards nothing outside may have been
created, changed, deleted -- or even opened: inotify watches the outside while the guest runs.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from tracer.backend import DescriptorFlags, DescriptorType, OpenFlags, PathFlags
from tracer.backends import _openat2
from tracer.backends.hostdir import HostDirBackend
from tracer.errors import ErrorCode, WasiError

READ = DescriptorFlags.READ
WRITE = DescriptorFlags.WRITE
FOLLOW = PathFlags.SYMLINK_FOLLOW
NOFOLLOW = 0
CREATE = OpenFlags.CREATE
DIRECTORY = OpenFlags.DIRECTORY
PERM = ErrorCode.NOT_PERMITTED
SECRET = b"the secret outside the mount"

# -- watching the outside --------------------------------------------------------------------

_IN_ACCESS, _IN_MODIFY, _IN_ATTRIB = 0x1, 0x2, 0x4
_IN_CLOSE_WRITE, _IN_OPEN = 0x8, 0x20
_IN_MOVED_FROM, _IN_MOVED_TO, _IN_CREATE, _IN_DELETE = 0x40, 0x80, 0x100, 0x200
_IN_DELETE_SELF, _IN_MOVE_SELF = 0x400, 0x800
_IN_ALL = (
    _IN_ACCESS
    | _IN_MODIFY
    | _IN_ATTRIB
    | _IN_CLOSE_WRITE
    | _IN_OPEN
    | _IN_MOVED_FROM
    | _IN_MOVED_TO
    | _IN_CREATE
    | _IN_DELETE
    | _IN_DELETE_SELF
    | _IN_MOVE_SELF
)
_EVENT = struct.Struct("iIII")
_libc = ctypes.CDLL(None, use_errno=True)


class OutsideWatch:
    """inotify on everything outside the mount: any open, read, write or change is an event.

    (A bare stat raises no inotify event; the snapshot catches every change it could make.)
    """

    def __init__(self, paths: list[Path], ignore: str) -> None:
        self.fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.names: dict[int, Path] = {}
        self.ignore = ignore  # events about the mounted directory itself, seen from its parent
        for path in paths:
            wd = _libc.inotify_add_watch(self.fd, os.fsencode(path), _IN_ALL)
            if wd < 0:
                raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")
            self.names[wd] = path

    def events(self) -> list[str]:
        found: list[str] = []
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return found
            offset = 0
            while offset < len(data):
                wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                raw = data[offset + _EVENT.size : offset + _EVENT.size + length]
                name = raw.rstrip(b"\0").decode()
                offset += _EVENT.size + length
                if name != self.ignore:
                    found.append(f"{self.names[wd]}/{name} mask={mask:#x}")

    def close(self) -> None:
        os.close(self.fd)


def snapshot(top: Path, skip: Path) -> dict[str, tuple[object, ...]]:
    """Everything under `top` but `skip`: kind, contents or target, and what changes would move."""
    found: dict[str, tuple[object, ...]] = {}
    for path in sorted(top.rglob("*")):
        if path == skip or skip in path.parents:
            continue
        st = path.lstat()
        if path.is_symlink():
            body: object = ("symlink", os.readlink(path))
        elif path.is_dir():
            body = "directory"
        else:
            body = path.read_bytes()
        key = str(path.relative_to(top))
        found[key] = (body, st.st_mode, st.st_nlink, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    return found


class World:
    def __init__(self, tmp: Path, fs: HostDirBackend) -> None:
        self.tmp = tmp
        self.root = tmp / "root"
        self.sentinel = tmp / "sentinel"
        self.secret = tmp / "secret"
        self.fs = fs
        self.top = fs.root()


@pytest.fixture(params=["openat2", "manual"])
def resolution(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "manual":

        def no_openat2(dirfd: int, path: bytes, flags: int, mode: int) -> int:
            raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))

        monkeypatch.setattr(_openat2, "syscall_openat2", no_openat2)
    _openat2.reset_probe()
    yield request.param
    _openat2.reset_probe()


@pytest.fixture
def world(tmp_path: Path, resolution: str) -> Iterator[World]:
    (tmp_path / "root").mkdir()
    (tmp_path / "sentinel").mkdir()
    (tmp_path / "sentinel" / "keep").write_bytes(b"keep me")
    (tmp_path / "sentinel" / "sub").mkdir()
    (tmp_path / "secret").write_bytes(SECRET)
    root = tmp_path / "root"
    (root / "inside").write_bytes(b"inside")
    (root / "a").mkdir()
    (root / "a" / "b").mkdir()
    # Escaping symlinks a guest could not make itself (absolute ones) are planted by the host.
    os.symlink("/", root / "to-slash")
    os.symlink(tmp_path / "secret", root / "abs-secret")
    os.symlink(tmp_path / "sentinel", root / "abs-sentinel")
    os.symlink("..", root / "up")
    os.symlink("../sentinel", root / "rel-sentinel")
    os.symlink("../secret", root / "rel-secret")
    fs = HostDirBackend(root)
    if fs.resolution != resolution:
        fs.close_all()
        pytest.skip(f"this kernel resolves with {fs.resolution}")
    before = snapshot(tmp_path, root)
    watch = OutsideWatch([tmp_path, tmp_path / "sentinel", tmp_path / "sentinel" / "sub"], "root")
    try:
        yield World(tmp_path, fs)
        events = watch.events()
    finally:
        watch.close()
        fs.close_all()
    assert events == [], "the guest touched the outside"
    assert snapshot(tmp_path, root) == before, "something outside the mount changed"


def fails(code: ErrorCode) -> AbstractContextManager[pytest.ExceptionInfo[WasiError]]:
    return pytest.raises(WasiError, match=f"^{code.value}")


# -- '..' and absolute paths -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["..", "../secret", "a/../../secret", "a/b/../../../secret", "./../sentinel/keep", "a/../.."],
)
def test_dotdot_above_the_root_is_not_permitted(world: World, path: str) -> None:
    with fails(PERM):
        world.fs.open_at(world.top, FOLLOW, path, 0, READ)
    with fails(PERM):
        world.fs.stat_at(world.top, NOFOLLOW, path)


def test_dotdot_that_stays_inside_resolves(world: World) -> None:
    fd = world.fs.open_at(world.top, NOFOLLOW, "a/b/../../inside", 0, READ)
    assert world.fs.read(fd, 100, 0) == b"inside"


def test_dotdot_above_a_subdirectory_descriptor_is_not_permitted(world: World) -> None:
    # As with wasmtime's capability handles, a descriptor is its own boundary.
    sub = world.fs.open_at(world.top, NOFOLLOW, "a", DIRECTORY, READ)
    with fails(PERM):
        world.fs.open_at(sub, NOFOLLOW, "../inside", 0, READ)
    with fails(PERM):
        world.fs.stat_at(sub, NOFOLLOW, "b/../..")
    assert world.fs.stat_at(sub, NOFOLLOW, "b/..").type == DescriptorType.DIRECTORY


def test_absolute_paths_are_not_permitted(world: World) -> None:
    for path in ("/", "/etc/passwd", str(world.secret), str(world.root / "inside")):
        with fails(PERM):
            world.fs.open_at(world.top, FOLLOW, path, 0, READ)
        with fails(PERM):
            world.fs.stat_at(world.top, FOLLOW, path)


def test_creating_above_the_root_is_not_permitted(world: World) -> None:
    with fails(PERM):
        world.fs.open_at(world.top, NOFOLLOW, "../created", CREATE, WRITE)
    with fails(PERM):
        world.fs.open_at(world.top, NOFOLLOW, "a/../../sentinel/created", CREATE, WRITE)
    with fails(PERM):
        world.fs.create_directory_at(world.top, "../newdir")
    with fails(PERM):
        world.fs.create_directory_at(world.top, "..")


# -- symlinks leading out --------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "to-slash/etc/passwd",
        "abs-secret",
        "abs-sentinel/keep",
        "up/secret",
        "rel-sentinel/keep",
        "rel-secret",
        "a/../rel-secret",
    ],
)
def test_following_a_symlink_out_is_not_permitted(world: World, path: str) -> None:
    with fails(PERM):
        world.fs.open_at(world.top, FOLLOW, path, 0, READ)
    with fails(PERM):
        world.fs.stat_at(world.top, FOLLOW, path)
    with fails(PERM):
        world.fs.set_times_at(world.top, FOLLOW, path, 1, 1)


def test_an_unfollowed_escaping_symlink_is_only_the_link(world: World) -> None:
    assert world.fs.stat_at(world.top, NOFOLLOW, "abs-secret").type == (
        DescriptorType.SYMBOLIC_LINK
    )
    assert world.fs.readlink_at(world.top, "abs-secret") == str(world.secret)
    with fails(ErrorCode.LOOP):
        world.fs.open_at(world.top, NOFOLLOW, "abs-secret", 0, READ)
    # The link's own times may change; the secret's may not (the fixture checks).
    world.fs.set_times_at(world.top, NOFOLLOW, "abs-secret", 5, 5)
    assert world.fs.stat_at(world.top, NOFOLLOW, "abs-secret").data_modification_timestamp == 5


def test_relative_chains_that_climb_out_are_not_permitted(world: World) -> None:
    # a1 -> b1/..  and  b1 -> ../..: each step looks harmless, together they leave.
    world.fs.create_directory_at(world.top, "c")
    world.fs.symlink_at(world.top, "../..", "c/b1")
    world.fs.symlink_at(world.top, "b1/..", "c/a1")
    world.fs.symlink_at(world.top, "c/a1/secret", "chain")
    for path in ("c/a1/secret", "c/b1/secret", "chain"):
        with fails(PERM):
            world.fs.open_at(world.top, FOLLOW, path, 0, READ)
    # A long chain of hops that only leaves at the very end.
    world.fs.symlink_at(world.top, "../secret", "hop0")
    for n in range(1, 10):
        world.fs.symlink_at(world.top, f"hop{n - 1}", f"hop{n}")
    with fails(PERM):
        world.fs.open_at(world.top, FOLLOW, "hop9", 0, READ)


def test_symlink_loops_are_loop(world: World) -> None:
    world.fs.symlink_at(world.top, "self", "self")
    world.fs.symlink_at(world.top, "ping", "pong")
    world.fs.symlink_at(world.top, "pong", "ping")
    world.fs.symlink_at(world.top, "a/../loopdir/x", "loopdir")
    for path in ("self", "ping", "pong/x", "loopdir"):
        with fails(ErrorCode.LOOP):
            world.fs.open_at(world.top, FOLLOW, path, 0, READ)
    with fails(ErrorCode.LOOP):
        world.fs.open_at(world.top, FOLLOW, "ping", CREATE, WRITE)
    with fails(ErrorCode.LOOP):
        world.fs.stat_at(world.top, FOLLOW, "ping")


def test_a_dangling_symlink_out_never_creates_its_target(world: World) -> None:
    world.fs.symlink_at(world.top, "../sentinel/created", "dangle-rel")
    world.fs.symlink_at(world.top, "up/created", "dangle-up")
    probe = f"/wasitrace-escape-{uuid.uuid4().hex}"
    os.symlink(probe, world.root / "dangle-abs")
    os.symlink(str(world.sentinel / "created"), world.root / "dangle-abs2")
    for path in ("dangle-rel", "dangle-up", "dangle-abs", "dangle-abs2"):
        with fails(PERM):
            world.fs.open_at(world.top, FOLLOW, path, CREATE, WRITE)
        # Unfollowed, O_CREAT on a symlink refuses to touch it at all.
        with fails(ErrorCode.LOOP):
            world.fs.open_at(world.top, NOFOLLOW, path, CREATE, WRITE)
    assert not os.path.lexists(probe)


def test_a_dangling_symlink_inside_creates_its_target_inside(world: World) -> None:
    world.fs.symlink_at(world.top, "a/made", "dangle-in")
    fd = world.fs.open_at(world.top, FOLLOW, "dangle-in", CREATE, WRITE)
    world.fs.write(fd, b"ok", 0)
    assert (world.root / "a" / "made").read_bytes() == b"ok"


@pytest.mark.parametrize("link", ["abs-sentinel", "rel-sentinel", "up"])
def test_intermediate_symlinks_out_are_not_permitted_for_every_operation(
    world: World, link: str
) -> None:
    fs, top = world.fs, world.top
    inner = f"{link}/sentinel/keep" if link == "up" else f"{link}/keep"
    sub = f"{link}/sentinel/sub" if link == "up" else f"{link}/sub"
    attempts: list[Callable[[], object]] = [
        lambda: fs.stat_at(top, NOFOLLOW, inner),
        lambda: fs.readlink_at(top, inner),
        lambda: fs.set_times_at(top, NOFOLLOW, inner, 1, 1),
        lambda: fs.unlink_file_at(top, inner),
        lambda: fs.remove_directory_at(top, sub),
        lambda: fs.create_directory_at(top, f"{link}/newdir"),
        lambda: fs.symlink_at(top, "x", f"{link}/newlink"),
        lambda: fs.open_at(top, NOFOLLOW, inner, 0, READ),
        lambda: fs.open_at(top, NOFOLLOW, f"{link}/new", CREATE, WRITE),
    ]
    for attempt in attempts:
        with fails(PERM):
            attempt()


def test_absolute_symlink_targets_cannot_be_created(world: World) -> None:
    # wasmtime (cap-std) refuses them, so a guest cannot plant a link for host programs.
    with fails(PERM):
        world.fs.symlink_at(world.top, str(world.secret), "planted")
    with fails(PERM):
        world.fs.symlink_at(world.top, "/", "planted")
    assert not os.path.lexists(world.root / "planted")


def test_relative_symlinks_that_escape_are_created_but_never_followed(world: World) -> None:
    world.fs.symlink_at(world.top, "../secret", "rel-made")
    assert os.readlink(world.root / "rel-made") == "../secret"
    with fails(PERM):
        world.fs.open_at(world.top, FOLLOW, "rel-made", 0, READ)


# -- rename and link across the boundary -----------------------------------------------------


def test_rename_out_of_the_root_is_not_permitted(world: World) -> None:
    fs, top = world.fs, world.top
    for target in ("../stolen", "up/stolen", "rel-sentinel/stolen", "abs-sentinel/stolen", ".."):
        with fails(PERM):
            fs.rename_at(top, "inside", top, target)
    assert (world.root / "inside").read_bytes() == b"inside"


def test_rename_into_the_root_from_outside_is_not_permitted(world: World) -> None:
    fs, top = world.fs, world.top
    for source in ("../secret", "up/secret", "rel-sentinel/keep", "abs-sentinel/keep", ".."):
        with fails(PERM):
            fs.rename_at(top, source, top, "stolen")
    assert not (world.root / "stolen").exists()


def test_renaming_an_escaping_symlink_moves_only_the_link(world: World) -> None:
    world.fs.rename_at(world.top, "abs-secret", world.top, "a/moved")
    assert os.readlink(world.root / "a" / "moved") == str(world.secret)


def test_hard_links_across_the_boundary_are_not_permitted(world: World) -> None:
    fs, top = world.fs, world.top
    for source in ("../secret", "up/secret", "rel-sentinel/keep", "abs-sentinel/keep"):
        with fails(PERM):
            fs.link_at(top, NOFOLLOW, source, top, "stolen")
    for target in ("../stolen", "up/stolen", "rel-sentinel/stolen", "abs-sentinel/stolen"):
        with fails(PERM):
            fs.link_at(top, NOFOLLOW, "inside", top, target)
    # Following a symlink out while linking would hand the guest the outside file.
    for source in ("abs-secret", "rel-secret", "up/secret"):
        with fails(PERM):
            fs.link_at(top, FOLLOW, source, top, "stolen")
    assert not os.path.lexists(world.root / "stolen")


def test_hard_linking_an_escaping_symlink_unfollowed_links_the_link(world: World) -> None:
    world.fs.link_at(world.top, NOFOLLOW, "abs-secret", world.top, "twin")
    assert os.readlink(world.root / "twin") == str(world.secret)


# -- directory descriptors -------------------------------------------------------------------


def test_a_directory_symlink_out_cannot_be_opened(world: World) -> None:
    for link in ("abs-sentinel", "rel-sentinel", "up", "to-slash"):
        with fails(PERM):
            world.fs.open_at(world.top, FOLLOW, link, DIRECTORY, READ)
        with fails(ErrorCode.LOOP):
            world.fs.open_at(world.top, NOFOLLOW, link, 0, READ)
        with fails(PERM):
            world.fs.open_at(world.top, NOFOLLOW, f"{link}/", DIRECTORY, READ)


def test_a_subdirectory_descriptor_stays_confined_after_its_directory_moves(world: World) -> None:
    sub = world.fs.open_at(world.top, NOFOLLOW, "a/b", DIRECTORY, READ)
    world.fs.rename_at(world.top, "a/b", world.top, "moved")
    with fails(PERM):
        world.fs.open_at(sub, NOFOLLOW, "../../secret", 0, READ)
    fd = world.fs.open_at(sub, NOFOLLOW, "new", CREATE, WRITE)
    world.fs.close(fd)
    assert (world.root / "moved" / "new").exists()


def test_names_with_nul_bytes_are_invalid_not_truncated(world: World) -> None:
    with fails(ErrorCode.INVALID):
        world.fs.open_at(world.top, NOFOLLOW, "inside\0/../../secret", 0, READ)
    with fails(ErrorCode.INVALID):
        world.fs.create_directory_at(world.top, "made\0hidden")
    assert not (world.root / "made").exists()


# -- racing the resolution -------------------------------------------------------------------


def test_swapping_a_directory_for_an_escaping_symlink_mid_operation_never_escapes(
    world: World,
) -> None:
    """Another process keeps replacing `sub` (a real directory) with symlinks to the outside
    while the guest opens, creates, stats, renames and unlinks through it. Whatever the guest
    sees, it may only ever act inside; the fixture checks the outside afterwards."""
    root = world.root
    os.mkdir(root / "real")
    (root / "real" / "keep").write_bytes(b"inside keep")
    os.symlink(str(world.sentinel), root / "link-abs")
    os.symlink("../sentinel", root / "link-rel")
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            for name in ("real", "link-abs", "real", "link-rel"):
                os.rename(root / name, root / "sub")
                os.rename(root / "sub", root / name)

    swapper = threading.Thread(target=swap)
    swapper.start()
    fs, top = world.fs, world.top
    outcomes: dict[str, int] = {}
    operations: list[Callable[[], object]] = [
        lambda: fs.close(fs.open_at(top, FOLLOW, "sub/keep", 0, READ)),
        lambda: fs.close(fs.open_at(top, FOLLOW, "sub/made", CREATE, WRITE)),
        lambda: fs.stat_at(top, FOLLOW, "sub/keep"),
        lambda: fs.set_times_at(top, NOFOLLOW, "sub/keep", 7, 7),
        lambda: fs.unlink_file_at(top, "sub/made"),
        lambda: fs.create_directory_at(top, "sub/dir"),
        lambda: fs.remove_directory_at(top, "sub/dir"),
        lambda: fs.rename_at(top, "sub/keep", top, "sub/keep"),
        lambda: fs.link_at(top, NOFOLLOW, "sub/keep", top, "sub/twin"),
        lambda: fs.unlink_file_at(top, "sub/twin"),
    ]
    try:
        for _ in range(1000):
            for operation in operations:
                try:
                    operation()
                    outcome = "ok"
                except WasiError as error:
                    outcome = error.code.value
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
    finally:
        stop.set()
        swapper.join()
    # The race really happened: some calls met the directory, some met a symlink out.
    assert outcomes.get("ok", 0) > 0 and outcomes.get(PERM.value, 0) > 0, outcomes
    assert set(outcomes) <= {"ok", PERM.value, "no-entry", "exist", "not-directory"}, outcomes
    assert (root / "real" / "keep").read_bytes() == b"inside keep"
