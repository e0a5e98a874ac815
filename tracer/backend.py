"""The backend seam: every input a guest can observe, as typed operations in WASI's vocabulary.

Two protocols live here:

* `Filesystem` -- one mounted tree (memory, a host directory, later archives or git commits).
  Its operations are modelled on wasi:filesystem 0.2 `descriptor` methods. Descriptors are small
  ints local to the filesystem; `root()` is the descriptor of the mount's top directory.
* `Backend` -- everything the guest sees: the filesystem operations over *global* descriptors
  (see `tracer.backends.mounts.Mounts`, which routes them to the right `Filesystem`), plus
  arguments, environment, clocks, randomness, the standard streams and the exit status.

The host layers (`tracer.host.preview1`, later preview 2) talk only to a `Backend`; the tracing
proxy and the replayer implement `Backend` too, generically over `tracer.operations.OPERATIONS`.

Failures are `tracer.errors.WasiError(code)`; any other exception is a bug.

Path rules every filesystem follows (the confinement contract):
* paths are relative and '/'-separated, resolved beneath the descriptor they are given with
  (as openat2's RESOLVE_BENEATH and wasmtime do); an absolute path, or a `..` / symlink that
  would leave that descriptor's directory, fails with `not-permitted`;
* intermediate symlinks are always followed (within the mount); the last component is followed
  only when `path_flags` has `PathFlags.SYMLINK_FOLLOW`; more than 40 links give `loop`;
* an empty path is `no-entry`; a trailing '/' requires the target to be a directory.
"""

from __future__ import annotations

from enum import IntFlag, StrEnum
from typing import Literal, NamedTuple, Protocol, TypeAlias


class DescriptorType(StrEnum):
    """wasi:filesystem/types `descriptor-type`."""

    UNKNOWN = "unknown"
    BLOCK_DEVICE = "block-device"
    CHARACTER_DEVICE = "character-device"
    DIRECTORY = "directory"
    FIFO = "fifo"
    SYMBOLIC_LINK = "symbolic-link"
    REGULAR_FILE = "regular-file"
    SOCKET = "socket"


class PathFlags(IntFlag):
    """wasi:filesystem/types `path-flags` (same bits as preview 1 `lookupflags`)."""

    SYMLINK_FOLLOW = 1


class OpenFlags(IntFlag):
    """wasi:filesystem/types `open-flags` (same bits as preview 1 `oflags`)."""

    CREATE = 1
    DIRECTORY = 2
    EXCLUSIVE = 4
    TRUNCATE = 8


class DescriptorFlags(IntFlag):
    """wasi:filesystem/types `descriptor-flags`, in WIT order."""

    READ = 1
    WRITE = 2
    FILE_INTEGRITY_SYNC = 4
    DATA_INTEGRITY_SYNC = 8
    REQUESTED_WRITE_SYNC = 16
    MUTATE_DIRECTORY = 32


class Advice(StrEnum):
    """wasi:filesystem/types `advice`."""

    NORMAL = "normal"
    SEQUENTIAL = "sequential"
    RANDOM = "random"
    WILL_NEED = "will-need"
    DONT_NEED = "dont-need"
    NO_REUSE = "no-reuse"


class Clock(StrEnum):
    """The clocks a guest can read (preview 1 clock ids 0-3, in that order)."""

    REALTIME = "realtime"
    MONOTONIC = "monotonic"
    PROCESS_CPUTIME = "process-cputime"
    THREAD_CPUTIME = "thread-cputime"


class DescriptorStat(NamedTuple):
    """wasi:filesystem `descriptor-stat`, plus the device and inode numbers preview 1 reports.

    Timestamps are nanoseconds since the Unix epoch; None where the filesystem has none.
    Field order follows preview 1 `filestat`, so the host layer can pack it directly.
    """

    device: int
    inode: int
    type: DescriptorType
    link_count: int
    size: int
    data_access_timestamp: int | None
    data_modification_timestamp: int | None
    status_change_timestamp: int | None


class DirectoryEntry(NamedTuple):
    """wasi:filesystem `directory-entry`, plus the inode number preview 1 `dirent` carries."""

    type: DescriptorType
    name: str
    inode: int


NOW: Literal["now"] = "now"
# wasi:filesystem `new-timestamp`: None = no-change, "now", or nanoseconds since the epoch.
NewTimestamp: TypeAlias = int | Literal["now"] | None


class Filesystem(Protocol):
    """One mounted tree. Descriptors are ints local to this filesystem.

    `flags` of `open_at` are `DescriptorFlags` bits and decide what the new descriptor may do:
    reading without READ or writing without WRITE fails with `bad-descriptor`; a directory
    cannot be opened with WRITE (`is-directory`).
    """

    def root(self) -> int:
        """The descriptor of the mount's top directory (opened once, stays open)."""
        ...

    def open_at(self, fd: int, path_flags: int, path: str, open_flags: int, flags: int) -> int: ...

    def read(self, fd: int, length: int, offset: int) -> bytes:
        """Up to `length` bytes at `offset`; fewer at end of file, b'' at or past it."""
        ...

    def write(self, fd: int, data: bytes, offset: int) -> int:
        """Write at `offset` (a gap past the end reads as zeros); returns bytes written."""
        ...

    def append(self, fd: int, data: bytes) -> int:
        """Write at the current end of the file; returns bytes written."""
        ...

    def stat(self, fd: int) -> DescriptorStat: ...

    def stat_at(self, fd: int, path_flags: int, path: str) -> DescriptorStat: ...

    def read_directory(self, fd: int) -> list[DirectoryEntry]:
        """All entries but '.' and '..', in a stable order (the same on every call)."""
        ...

    def create_directory_at(self, fd: int, path: str) -> None: ...

    def remove_directory_at(self, fd: int, path: str) -> None: ...

    def unlink_file_at(self, fd: int, path: str) -> None: ...

    def rename_at(self, fd: int, old_path: str, new_fd: int, new_path: str) -> None: ...

    def symlink_at(self, fd: int, old_path: str, new_path: str) -> None:
        """Create a symlink at `new_path` whose target text is `old_path`."""
        ...

    def readlink_at(self, fd: int, path: str) -> str: ...

    def link_at(
        self, fd: int, old_path_flags: int, old_path: str, new_fd: int, new_path: str
    ) -> None: ...

    def set_size(self, fd: int, size: int) -> None: ...

    def set_times(
        self,
        fd: int,
        data_access_timestamp: NewTimestamp,
        data_modification_timestamp: NewTimestamp,
    ) -> None: ...

    def set_times_at(
        self,
        fd: int,
        path_flags: int,
        path: str,
        data_access_timestamp: NewTimestamp,
        data_modification_timestamp: NewTimestamp,
    ) -> None: ...

    def sync(self, fd: int) -> None: ...

    def sync_data(self, fd: int) -> None: ...

    def advise(self, fd: int, offset: int, length: int, advice: Advice) -> None: ...

    def close(self, fd: int) -> None: ...


class Backend(Protocol):
    """Everything a guest can observe. Filesystem operations take global descriptors.

    The names and parameters here are the trace's vocabulary; `tracer.operations.OPERATIONS`
    lists them and `wit/backend.wit` mirrors them (a test keeps all three in step).
    """

    # -- wasi:cli ------------------------------------------------------------------------
    def arguments(self) -> list[str]: ...

    def environment(self) -> list[tuple[str, str]]: ...

    def preopens(self) -> list[tuple[int, str]]:
        """(descriptor, guest path) of every preopened directory, in mount order."""
        ...

    def exit(self, status: int) -> None:
        """The guest asked to exit (proc_exit); recorded so replay can check it."""
        ...

    # -- wasi:clocks, wasi:random ----------------------------------------------------------
    def clock_now(self, clock: Clock) -> int:
        """Nanoseconds: since the epoch for realtime, since an arbitrary point otherwise."""
        ...

    def clock_resolution(self, clock: Clock) -> int: ...

    def sleep(self, duration: int) -> None:
        """Block for `duration` nanoseconds (poll_oneoff on clocks)."""
        ...

    def random_bytes(self, length: int) -> bytes: ...

    # -- standard streams ------------------------------------------------------------------
    def read_stdin(self, length: int) -> bytes:
        """Up to `length` bytes; b'' at end of input."""
        ...

    def write_stdout(self, data: bytes) -> None: ...

    def write_stderr(self, data: bytes) -> None: ...

    # -- wasi:filesystem (global descriptors) ----------------------------------------------
    def open_at(self, fd: int, path_flags: int, path: str, open_flags: int, flags: int) -> int: ...

    def read(self, fd: int, length: int, offset: int) -> bytes: ...

    def write(self, fd: int, data: bytes, offset: int) -> int: ...

    def append(self, fd: int, data: bytes) -> int: ...

    def stat(self, fd: int) -> DescriptorStat: ...

    def stat_at(self, fd: int, path_flags: int, path: str) -> DescriptorStat: ...

    def read_directory(self, fd: int) -> list[DirectoryEntry]: ...

    def create_directory_at(self, fd: int, path: str) -> None: ...

    def remove_directory_at(self, fd: int, path: str) -> None: ...

    def unlink_file_at(self, fd: int, path: str) -> None: ...

    def rename_at(self, fd: int, old_path: str, new_fd: int, new_path: str) -> None: ...

    def symlink_at(self, fd: int, old_path: str, new_path: str) -> None: ...

    def readlink_at(self, fd: int, path: str) -> str: ...

    def link_at(
        self, fd: int, old_path_flags: int, old_path: str, new_fd: int, new_path: str
    ) -> None: ...

    def set_size(self, fd: int, size: int) -> None: ...

    def set_times(
        self,
        fd: int,
        data_access_timestamp: NewTimestamp,
        data_modification_timestamp: NewTimestamp,
    ) -> None: ...

    def set_times_at(
        self,
        fd: int,
        path_flags: int,
        path: str,
        data_access_timestamp: NewTimestamp,
        data_modification_timestamp: NewTimestamp,
    ) -> None: ...

    def sync(self, fd: int) -> None: ...

    def sync_data(self, fd: int) -> None: ...

    def advise(self, fd: int, offset: int, length: int, advice: Advice) -> None: ...

    def close(self, fd: int) -> None: ...
