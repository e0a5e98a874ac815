"""The memory and host-directory backends agree on random sequences of operations.

A hypothesis state machine applies each operation to a `MemoryBackend` and to a `HostDirBackend`
on a fresh temporary directory, and requires the same outcome from both: the same value, or the
same WASI error code. Names come from a tiny alphabet so that operations collide (create over an
existing name, rename onto a directory, unlink an open file, ...). Stat results are compared on
the fields two filesystems can share: type, and for non-directories size and link count.
After every step both trees, walked through the `Filesystem` protocol, must be equal.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tracer.backend import (
    DescriptorFlags,
    DescriptorStat,
    DescriptorType,
    Filesystem,
    NewTimestamp,
    OpenFlags,
    PathFlags,
)
from tracer.backends.memory import MemoryBackend
from tracer.errors import WasiError

hostdir = pytest.importorskip("tracer.backends.hostdir")

# Repeats weight the draws: mostly one or two real names, so that operations meet each other's
# results; sometimes '.' and '..' (which may try to leave the mount) and a trailing '/'.
COMPONENTS = st.sampled_from(["a", "b", "c", "d"] * 3 + [".", ".."])
PATHS = st.builds(
    lambda parts, slash: "/".join(parts) + ("/" if slash else ""),
    st.sampled_from([1, 1, 1, 1, 2, 2, 3]).flatmap(
        lambda n: st.lists(COMPONENTS, min_size=n, max_size=n)
    ),
    st.integers(0, 5).map(lambda n: n == 0),
)
TARGETS = PATHS | st.sampled_from(["/a", "a/b/c/d"])
PATH_FLAGS = st.sampled_from([0, PathFlags.SYMLINK_FOLLOW])
CREATE, TRUNCATE, EXCLUSIVE = OpenFlags.CREATE, OpenFlags.TRUNCATE, OpenFlags.EXCLUSIVE
COMMON_OPEN_FLAGS = st.sampled_from(
    [CREATE, CREATE, CREATE | TRUNCATE, CREATE | EXCLUSIVE, OpenFlags(0), TRUNCATE]
)
OPEN_FLAGS = st.one_of(COMMON_OPEN_FLAGS, COMMON_OPEN_FLAGS, st.integers(0, 15).map(OpenFlags))
READ_WRITE = DescriptorFlags.READ | DescriptorFlags.WRITE
DESCRIPTOR_FLAGS = st.sampled_from(
    [READ_WRITE, READ_WRITE, DescriptorFlags.READ, DescriptorFlags.WRITE, DescriptorFlags(0)]
)
# Which open descriptor an operation uses: 0 is the newest, counting back and wrapping around;
# ROOT is the root, where path operations start half of the time.
ROOT = -1
PICK = st.integers(0, 7)
AT = st.just(ROOT) | PICK
DATA = st.binary(max_size=6)
SMALL = st.integers(0, 12)

Outcome = tuple[str, Any]


def comparable(stat: DescriptorStat) -> tuple[DescriptorType, int | None, int | None]:
    # Directory sizes and link counts are the host filesystem's own business (ext4 reports
    # 4096 bytes, btrfs one link), so only a directory's type is compared.
    if stat.type == DescriptorType.DIRECTORY:
        return (stat.type, None, None)
    return (stat.type, stat.size, stat.link_count)


def tree(fs: Filesystem) -> dict[str, object]:
    """Everything under the root, read through the protocol: path -> contents / None / target."""
    found: dict[str, object] = {}

    def walk(fd: int, prefix: str) -> None:
        for entry in sorted(fs.read_directory(fd), key=lambda e: e.name):
            path = prefix + entry.name
            if entry.type == DescriptorType.DIRECTORY:
                found[path] = None
                sub = fs.open_at(fd, 0, entry.name, OpenFlags.DIRECTORY, DescriptorFlags.READ)
                walk(sub, path + "/")
                fs.close(sub)
            elif entry.type == DescriptorType.SYMBOLIC_LINK:
                found[path] = ("symlink", fs.readlink_at(fd, entry.name))
            else:
                file = fs.open_at(fd, 0, entry.name, 0, DescriptorFlags.READ)
                found[path] = (fs.read(file, 1 << 16, 0), fs.stat(file).link_count)
                fs.close(file)

    walk(fs.root(), "")
    return found


class BackendsAgree(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="wasitrace-agree-")
        self.memory = MemoryBackend()
        self.host = hostdir.HostDirBackend(self.directory)
        self.backends: tuple[Filesystem, Filesystem] = (self.memory, self.host)
        # Open descriptors as (memory, host) pairs; the roots first, never closed.
        self.descriptors: list[tuple[int, int]] = [(self.memory.root(), self.host.root())]

    def teardown(self) -> None:
        self.host.close_all()
        shutil.rmtree(self.directory)

    def pick(self, n: int) -> tuple[int, int]:
        return self.descriptors[0 if n == ROOT else -1 - n % len(self.descriptors)]

    def pick_opened(self, n: int) -> tuple[int, int]:
        """Like `pick`, but skips the root while anything else is open (for data operations)."""
        if len(self.descriptors) == 1:
            return self.descriptors[0]
        return self.descriptors[-1 - n % (len(self.descriptors) - 1)]

    def outcomes(
        self, call: Callable[..., object], *pairs: tuple[int, int]
    ) -> tuple[Outcome, Outcome]:
        """`call(fs, *fds)` on memory, then host, each with its own descriptors."""
        results: list[Outcome] = []
        for side, fs in enumerate(self.backends):
            try:
                results.append(("ok", call(fs, *(pair[side] for pair in pairs))))
            except WasiError as error:
                results.append(("error", error.code.value))
        return results[0], results[1]

    def both(self, what: str, call: Callable[..., object], *pairs: tuple[int, int]) -> None:
        memory, host = self.outcomes(call, *pairs)
        assert memory == host, f"{what}: memory gave {memory}, host gave {host}"

    # -- rules -----------------------------------------------------------------------------------

    @initialize(
        layout=st.lists(
            st.sampled_from(["file", "directory", "symlink", None, None]), min_size=3, max_size=3
        )
    )
    def populate(self, layout: list[str | None]) -> None:
        """Start from a few entries, so the first operations already meet something."""
        for name, kind in zip("abc", layout, strict=True):
            if kind == "file":
                self.write_file(ROOT, name, name.encode() * 3)
            elif kind == "directory":
                self.create_directory_at(ROOT, name)
            elif kind == "symlink":
                self.symlink_at(ROOT, "a", name)

    @rule(at=AT, path_flags=PATH_FLAGS, path=PATHS, open_flags=OPEN_FLAGS, flags=DESCRIPTOR_FLAGS)
    def open_at(self, at: int, path_flags: int, path: str, open_flags: int, flags: int) -> None:
        memory, host = self.outcomes(
            lambda fs, fd: fs.open_at(fd, path_flags, path, open_flags, flags), self.pick(at)
        )
        # Descriptor numbers are each backend's own; only success or the error must match.
        assert memory[0] == host[0] and (memory[0] == "ok" or memory == host), (
            f"open_at({path!r}, path_flags={path_flags!r}, open_flags={open_flags!r}, "
            f"flags={flags!r}): memory gave {memory}, host gave {host}"
        )
        if memory[0] == "ok":
            self.descriptors.append((memory[1], host[1]))

    @rule(path=PATHS)
    def open_file(self, path: str) -> None:
        """The common case, drawn more often: a file opened for reading and writing."""
        self.open_at(ROOT, 0, path, CREATE, READ_WRITE)

    @rule(at=AT, path=PATHS, data=DATA)
    def write_file(self, at: int, path: str, data: bytes) -> None:
        def write_file(fs: Filesystem, fd: int) -> None:
            file = fs.open_at(fd, 0, path, CREATE | TRUNCATE, DescriptorFlags.WRITE)
            try:
                fs.write(file, data, 0)
            finally:
                fs.close(file)

        self.both(f"write_file({path!r}, {data!r})", write_file, self.pick(at))

    @rule(fd=PICK)
    def close(self, fd: int) -> None:
        if len(self.descriptors) > 1:
            pair = self.descriptors.pop(-1 - fd % (len(self.descriptors) - 1))
            for fs, number in zip(self.backends, pair, strict=True):
                fs.close(number)

    @rule(fd=PICK, length=SMALL, offset=SMALL)
    def read(self, fd: int, length: int, offset: int) -> None:
        self.both(
            f"read({length}, {offset})",
            lambda fs, d: fs.read(d, length, offset),
            self.pick_opened(fd),
        )

    @rule(fd=PICK, data=DATA, offset=SMALL)
    def write(self, fd: int, data: bytes, offset: int) -> None:
        self.both(
            f"write({data!r}, {offset})",
            lambda fs, d: fs.write(d, data, offset),
            self.pick_opened(fd),
        )

    @rule(fd=PICK, data=DATA)
    def append(self, fd: int, data: bytes) -> None:
        self.both(f"append({data!r})", lambda fs, d: fs.append(d, data), self.pick_opened(fd))

    @rule(fd=PICK, size=SMALL)
    def set_size(self, fd: int, size: int) -> None:
        self.both(f"set_size({size})", lambda fs, d: fs.set_size(d, size), self.pick_opened(fd))

    @rule(fd=PICK)
    def stat(self, fd: int) -> None:
        self.both("stat", lambda fs, d: comparable(fs.stat(d)), self.pick_opened(fd))

    @rule(at=AT, path_flags=PATH_FLAGS, path=PATHS)
    def stat_at(self, at: int, path_flags: int, path: str) -> None:
        self.both(
            f"stat_at({path!r}, {path_flags!r})",
            lambda fs, d: comparable(fs.stat_at(d, path_flags, path)),
            self.pick(at),
        )

    @rule(fd=PICK)
    def read_directory(self, fd: int) -> None:
        self.both(
            "read_directory",
            lambda fs, d: sorted((e.name, e.type) for e in fs.read_directory(d)),
            self.pick_opened(fd),
        )

    @rule(at=AT, path=PATHS)
    def create_directory_at(self, at: int, path: str) -> None:
        self.both(
            f"create_directory_at({path!r})",
            lambda fs, d: fs.create_directory_at(d, path),
            self.pick(at),
        )

    @rule(at=AT, path=PATHS)
    def remove_directory_at(self, at: int, path: str) -> None:
        self.both(
            f"remove_directory_at({path!r})",
            lambda fs, d: fs.remove_directory_at(d, path),
            self.pick(at),
        )

    @rule(at=AT, path=PATHS)
    def unlink_file_at(self, at: int, path: str) -> None:
        self.both(
            f"unlink_file_at({path!r})", lambda fs, d: fs.unlink_file_at(d, path), self.pick(at)
        )

    @rule(at=AT, old=PATHS, new_at=AT, new=PATHS)
    def rename_at(self, at: int, old: str, new_at: int, new: str) -> None:
        self.both(
            f"rename_at({old!r}, {new!r})",
            lambda fs, d, n: fs.rename_at(d, old, n, new),
            self.pick(at),
            self.pick(new_at),
        )

    # (`target` is reserved by `rule`, hence `contents`.)
    @rule(at=AT, contents=TARGETS, path=PATHS)
    def symlink_at(self, at: int, contents: str, path: str) -> None:
        self.both(
            f"symlink_at({contents!r}, {path!r})",
            lambda fs, d: fs.symlink_at(d, contents, path),
            self.pick(at),
        )

    @rule(at=AT, path=PATHS)
    def readlink_at(self, at: int, path: str) -> None:
        self.both(f"readlink_at({path!r})", lambda fs, d: fs.readlink_at(d, path), self.pick(at))

    @rule(at=AT, path_flags=PATH_FLAGS, old=PATHS, new_at=AT, new=PATHS)
    def link_at(self, at: int, path_flags: int, old: str, new_at: int, new: str) -> None:
        self.both(
            f"link_at({old!r}, {new!r}, {path_flags!r})",
            lambda fs, d, n: fs.link_at(d, path_flags, old, n, new),
            self.pick(at),
            self.pick(new_at),
        )

    @rule(
        at=AT,
        path_flags=PATH_FLAGS,
        path=PATHS,
        times=st.sampled_from([(1_000_000_000, "now"), (None, None)]),
    )
    def set_times_at(
        self, at: int, path_flags: int, path: str, times: tuple[NewTimestamp, NewTimestamp]
    ) -> None:
        pair = self.pick(at)
        # Only the outcome is compared: the two clocks and timestamp granularities differ.
        self.both(
            f"set_times_at({path!r}, {path_flags!r}, {times!r})",
            lambda fs, d: fs.set_times_at(d, path_flags, path, *times),
            pair,
        )

    @invariant()
    def trees_are_equal(self) -> None:
        assert tree(self.memory) == tree(self.host)


BackendsAgree.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_memory_and_host_directory_backends_agree = BackendsAgree.TestCase
