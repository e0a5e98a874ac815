"""`Sandbox`: the whole `Backend` of a live run, made of mounted filesystems and a `System`.

It gives every open descriptor a global number (lowest free, from 3, so a trace's numbers
usually match the guest's own fds), routes each filesystem operation to the `Filesystem` that
owns the descriptor, refuses changes on read-only mounts, and refuses to rename or link across
mounts (`cross-device`, as between two host filesystems).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from tracer.backend import (
    Advice,
    Clock,
    DescriptorFlags,
    DescriptorStat,
    DirectoryEntry,
    Filesystem,
    NewTimestamp,
    OpenFlags,
)
from tracer.errors import ErrorCode, WasiError
from tracer.system import System

FIRST_DESCRIPTOR = 3
# Plain ints: IntFlag operators are slow on the hot path.
_WRITING_OPEN = int(OpenFlags.CREATE | OpenFlags.TRUNCATE)
_WRITE = int(DescriptorFlags.WRITE)


@dataclass(frozen=True)
class Mount:
    guest_path: str
    filesystem: Filesystem
    read_only: bool = False
    # What to write in a trace header: "memory", "hostdir", ... and where it came from.
    kind: str = ""
    source: str = ""


class Sandbox:
    def __init__(self, system: System, mounts: list[Mount]) -> None:
        self._system = system
        self.mounts = list(mounts)
        # index = global descriptor; (mount index, local descriptor) or None when free
        self._table: list[tuple[int, int] | None] = [None] * FIRST_DESCRIPTOR
        self._free: list[int] = []
        self._preopens = [
            (self._allocate(i, m.filesystem.root()), m.guest_path)
            for i, m in enumerate(self.mounts)
        ]

    # -- descriptor table ----------------------------------------------------------------------
    def _allocate(self, mount: int, local: int) -> int:
        if self._free:
            fd = heapq.heappop(self._free)
            self._table[fd] = (mount, local)
            return fd
        self._table.append((mount, local))
        return len(self._table) - 1

    def _lookup(self, fd: int) -> tuple[int, int]:
        if 0 <= fd < len(self._table):
            entry = self._table[fd]
            if entry is not None:
                return entry
        raise WasiError(ErrorCode.BAD_DESCRIPTOR)

    def _fs(self, fd: int) -> tuple[Filesystem, int]:
        mount, local = self._lookup(fd)
        return self.mounts[mount].filesystem, local

    def _writable(self, fd: int) -> tuple[Filesystem, int]:
        mount, local = self._lookup(fd)
        m = self.mounts[mount]
        if m.read_only:
            raise WasiError(ErrorCode.NOT_PERMITTED, f"{m.guest_path} is mounted read-only")
        return m.filesystem, local

    def _pair(self, fd: int, new_fd: int) -> tuple[Filesystem, int, int]:
        """For rename and link: both descriptors writable, and on the same mount."""
        mount, local = self._lookup(fd)
        new_mount, new_local = self._lookup(new_fd)
        for m in (self.mounts[mount], self.mounts[new_mount]):
            if m.read_only:
                raise WasiError(ErrorCode.NOT_PERMITTED, f"{m.guest_path} is mounted read-only")
        if mount != new_mount:
            raise WasiError(ErrorCode.CROSS_DEVICE)
        return self.mounts[mount].filesystem, local, new_local

    # -- cli, clocks, random, stdio --------------------------------------------------------------
    def arguments(self) -> list[str]:
        return self._system.arguments()

    def environment(self) -> list[tuple[str, str]]:
        return self._system.environment()

    def preopens(self) -> list[tuple[int, str]]:
        return list(self._preopens)

    def exit(self, status: int) -> None:
        self._system.exit(status)

    def clock_now(self, clock: Clock) -> int:
        return self._system.clock_now(clock)

    def clock_resolution(self, clock: Clock) -> int:
        return self._system.clock_resolution(clock)

    def sleep(self, duration: int) -> None:
        self._system.sleep(duration)

    def random_bytes(self, length: int) -> bytes:
        return self._system.random_bytes(length)

    def read_stdin(self, length: int) -> bytes:
        return self._system.read_stdin(length)

    def write_stdout(self, data: bytes) -> None:
        self._system.write_stdout(data)

    def write_stderr(self, data: bytes) -> None:
        self._system.write_stderr(data)

    # -- filesystem ------------------------------------------------------------------------------
    def open_at(self, fd: int, path_flags: int, path: str, open_flags: int, flags: int) -> int:
        mount, local = self._lookup(fd)
        m = self.mounts[mount]
        if m.read_only and (flags & _WRITE or open_flags & _WRITING_OPEN):
            raise WasiError(ErrorCode.NOT_PERMITTED, f"{m.guest_path} is mounted read-only")
        return self._allocate(
            mount, m.filesystem.open_at(local, path_flags, path, open_flags, flags)
        )

    def read(self, fd: int, length: int, offset: int) -> bytes:
        fs, local = self._fs(fd)
        return fs.read(local, length, offset)

    # write and append need no read-only check: a read-only mount never opens a descriptor
    # for writing, and the filesystem refuses writes to one that is not (bad-descriptor).
    def write(self, fd: int, data: bytes, offset: int) -> int:
        fs, local = self._fs(fd)
        return fs.write(local, data, offset)

    def append(self, fd: int, data: bytes) -> int:
        fs, local = self._fs(fd)
        return fs.append(local, data)

    def stat(self, fd: int) -> DescriptorStat:
        fs, local = self._fs(fd)
        return fs.stat(local)

    def stat_at(self, fd: int, path_flags: int, path: str) -> DescriptorStat:
        fs, local = self._fs(fd)
        return fs.stat_at(local, path_flags, path)

    def read_directory(self, fd: int) -> list[DirectoryEntry]:
        fs, local = self._fs(fd)
        return fs.read_directory(local)

    def create_directory_at(self, fd: int, path: str) -> None:
        fs, local = self._writable(fd)
        fs.create_directory_at(local, path)

    def remove_directory_at(self, fd: int, path: str) -> None:
        fs, local = self._writable(fd)
        if path.endswith("/"):
            # As in wasmtime: a trailing '/' makes the last component '.', which cannot go.
            raise WasiError(ErrorCode.INVALID, "trailing '/' in rmdir")
        fs.remove_directory_at(local, path)

    def unlink_file_at(self, fd: int, path: str) -> None:
        fs, local = self._writable(fd)
        fs.unlink_file_at(local, path)

    def rename_at(self, fd: int, old_path: str, new_fd: int, new_path: str) -> None:
        fs, local, new_local = self._pair(fd, new_fd)
        fs.rename_at(local, old_path, new_local, new_path)

    def symlink_at(self, fd: int, old_path: str, new_path: str) -> None:
        fs, local = self._writable(fd)
        if old_path.startswith("/"):
            # An absolute target would point outside the mount, as wasmtime also refuses.
            raise WasiError(ErrorCode.NOT_PERMITTED, "absolute symlink target")
        fs.symlink_at(local, old_path, new_path)

    def readlink_at(self, fd: int, path: str) -> str:
        fs, local = self._fs(fd)
        target = fs.readlink_at(local, path)
        if target.startswith("/"):
            # wasmtime does not reveal absolute targets, which point outside the mount.
            raise WasiError(ErrorCode.NOT_PERMITTED, "absolute symlink target")
        return target

    def link_at(
        self, fd: int, old_path_flags: int, old_path: str, new_fd: int, new_path: str
    ) -> None:
        fs, local, new_local = self._pair(fd, new_fd)
        fs.link_at(local, old_path_flags, old_path, new_local, new_path)

    def set_size(self, fd: int, size: int) -> None:
        fs, local = self._writable(fd)
        fs.set_size(local, size)

    def set_times(
        self,
        fd: int,
        data_access_timestamp: NewTimestamp,
        data_modification_timestamp: NewTimestamp,
    ) -> None:
        fs, local = self._writable(fd)
        fs.set_times(local, data_access_timestamp, data_modification_timestamp)

    def set_times_at(
        self,
        fd: int,
        path_flags: int,
        path: str,
        data_access_timestamp: NewTimestamp,
        data_modification_timestamp: NewTimestamp,
    ) -> None:
        fs, local = self._writable(fd)
        fs.set_times_at(local, path_flags, path, data_access_timestamp, data_modification_timestamp)

    def sync(self, fd: int) -> None:
        fs, local = self._fs(fd)
        fs.sync(local)

    def sync_data(self, fd: int) -> None:
        fs, local = self._fs(fd)
        fs.sync_data(local)

    def advise(self, fd: int, offset: int, length: int, advice: Advice) -> None:
        fs, local = self._fs(fd)
        fs.advise(local, offset, length, advice)

    def close(self, fd: int) -> None:
        fs, local = self._fs(fd)
        self._table[fd] = None
        heapq.heappush(self._free, fd)
        fs.close(local)
