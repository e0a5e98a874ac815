"""The wasi_snapshot_preview1 host layer: guest ABI in, `Backend` operations out.

It decodes arguments from guest memory, keeps the guest's fd table (positions, append mode,
rights, the preopen names) and encodes results. It does no I/O of its own: everything the guest
can observe comes from the backend, so recording the backend is enough to replay the guest.
Behaviour follows wasmtime's own preview 1 implementation (docs/dev/wasmtime-preview1-behaviour.md).
"""

from __future__ import annotations

import ctypes
import heapq
from collections.abc import Callable
from dataclasses import dataclass

import wasmtime

from tracer.backend import (
    NOW,
    Backend,
    Clock,
    DescriptorFlags,
    DescriptorStat,
    DescriptorType,
    DirectoryEntry,
    NewTimestamp,
    OpenFlags,
)
from tracer.errors import WasiError
from tracer.host import p1abi as abi
from tracer.host.fastcall import HostFunction

MODULE = "wasi_snapshot_preview1"

# Kinds of fd-table entries.
STDIN, STDOUT, STDERR, FILE, DIRECTORY = range(5)

_I64_SIGN = 1 << 63
_U64_MAX = (1 << 64) - 1
# Flag bits as plain ints: IntFlag operators cost microseconds on this hot path.
_CREATE = int(OpenFlags.CREATE)
_DIRECTORY = int(OpenFlags.DIRECTORY)
_EXCLUSIVE = int(OpenFlags.EXCLUSIVE)
_TRUNCATE = int(OpenFlags.TRUNCATE)
_NOT_WITH_DIRECTORY = _CREATE | _EXCLUSIVE | _TRUNCATE
_READ = int(DescriptorFlags.READ)
_WRITE = int(DescriptorFlags.WRITE)
_MUTATE_DIRECTORY = int(DescriptorFlags.MUTATE_DIRECTORY)


class GuestExit(Exception):
    """The guest called proc_exit; wasmtime re-raises this from the export call."""

    def __init__(self, status: int) -> None:
        super().__init__(f"guest exited with status {status}")
        self.status = status


class GuestTrap(Exception):
    """The guest did something wasmtime answers with a trap (e.g. exit status 126 or more)."""


class Errno(Exception):
    """A preview 1 errno decided by the host layer itself (not by the backend)."""

    __slots__ = ("errno",)

    def __init__(self, errno: int) -> None:
        super().__init__(abi.ERRNO_NAMES[errno])
        self.errno = errno


class MemoryFault(Exception):
    """The guest passed a pointer outside its memory; wasmtime traps on this, and so do we."""


def _bad_value(what: str) -> GuestTrap:
    # wasmtime checks enum and flag values while decoding arguments, and traps on a bad one.
    return GuestTrap(f"invalid {what} value passed to a WASI function")


def errno_of(exc: BaseException) -> int:
    if isinstance(exc, WasiError):
        return abi.ERRNO_OF_CODE[exc.code]
    assert isinstance(exc, Errno)
    return exc.errno


EXPECTED_ERRORS: tuple[type[BaseException], ...] = (WasiError, Errno)


@dataclass(slots=True)
class FdEntry:
    kind: int
    handle: int = -1  # the backend's descriptor (files and directories)
    filetype: int = abi.FILETYPE_UNKNOWN
    flags: int = 0  # DescriptorFlags the backend descriptor was opened with
    append: bool = False
    nonblock: bool = False
    position: int = 0
    preopen: bytes | None = None


class Preview1:
    """One guest instance's preview 1 state over a backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.fds: dict[int, FdEntry] = {}
        self._freed: list[int] = []  # max-heap (negated) of closed fd numbers
        self._table_ready = False
        self._args: list[bytes] | None = None
        self._env: list[bytes] | None = None
        self._memory: wasmtime.Memory | None = None
        self._store: wasmtime.Store | None = None
        self.mem: memoryview = memoryview(bytearray())
        self._mem_size = 0

    # -- setup ---------------------------------------------------------------------------------
    def attach(self, store: wasmtime.Store, memory: wasmtime.Memory | None) -> None:
        """Give the layer the instance's exported memory (before the guest runs)."""
        self._store = store
        self._memory = memory
        self._refresh_memory()

    def detach(self) -> None:
        """Let go of the store and memory once the guest has run.

        Host functions defined the public way are held by wasmtime's module-level table until
        the store that uses them is deleted, and they hold this layer: holding the store too
        would keep both alive for the rest of the process, and the store freed at interpreter
        exit calls back into a half torn-down wasmtime package (a segmentation fault)."""
        self._store = None
        self._memory = None
        self.mem = memoryview(bytearray())
        self._mem_size = 0

    def _create_table(self) -> None:
        # As in wasmtime, the table (and so the backend's preopens) is made on the first call
        # that needs it.
        self._table_ready = True
        self.fds[0] = FdEntry(STDIN)
        self.fds[1] = FdEntry(STDOUT)
        self.fds[2] = FdEntry(STDERR)
        for handle, guest_path in self.backend.preopens():
            self.fds[self._new_fd()] = FdEntry(
                DIRECTORY,
                handle=handle,
                filetype=abi.FILETYPE_DIRECTORY,
                flags=_READ | _MUTATE_DIRECTORY,
                preopen=guest_path.encode(),
            )

    def _new_fd(self) -> int:
        # wasmtime reuses the largest freed number first, else one past the largest in use.
        while self._freed:
            fd = -heapq.heappop(self._freed)
            if fd not in self.fds:
                return fd
        return max(self.fds, default=-1) + 1

    def _release_fd(self, fd: int) -> None:
        del self.fds[fd]
        heapq.heappush(self._freed, -fd)

    # -- guest memory --------------------------------------------------------------------------
    def _refresh_memory(self) -> None:
        if self._memory is None or self._store is None:
            return
        size = self._memory.data_len(self._store)
        if size != self._mem_size:
            address = ctypes.addressof(self._memory.data_ptr(self._store).contents)
            self.mem = memoryview((ctypes.c_ubyte * size).from_address(address)).cast("B")
            self._mem_size = size

    def _check(self, ptr: int, size: int) -> None:
        """Make sure [ptr, ptr+size) is inside guest memory, which may have grown since."""
        if ptr + size > self._mem_size:
            self._refresh_memory()
            if ptr + size > self._mem_size:
                raise MemoryFault(f"guest pointer {ptr:#x}+{size} is outside its memory")

    def _bytes(self, ptr: int, size: int) -> bytes:
        if ptr + size > self._mem_size:
            self._check(ptr, size)
        return self.mem[ptr : ptr + size].tobytes()

    def _put(self, ptr: int, data: bytes) -> None:
        size = len(data)
        if ptr + size > self._mem_size:
            self._check(ptr, size)
        self.mem[ptr : ptr + size] = data

    def _u32(self, ptr: int, value: int) -> None:
        if ptr + 4 > self._mem_size:
            self._check(ptr, 4)
        abi.U32.pack_into(self.mem, ptr, value)

    def _u64(self, ptr: int, value: int) -> None:
        if ptr + 8 > self._mem_size:
            self._check(ptr, 8)
        abi.U64.pack_into(self.mem, ptr, value)

    def _path(self, ptr: int, size: int) -> str:
        raw = self._bytes(ptr, size)
        try:
            path = raw.decode()
        except UnicodeDecodeError:
            raise Errno(abi.EILSEQ) from None
        if "\0" in path:
            raise Errno(abi.EINVAL)
        return path

    def _first_iovec(self, ptr: int, count: int) -> tuple[int, int]:
        """The first non-empty iovec: wasmtime reads and writes only that one."""
        if ptr + 8 * count > self._mem_size:
            self._check(ptr, 8 * count)
        unpack = abi.IOVEC.unpack_from
        mem = self.mem
        for i in range(count):
            buf, size = unpack(mem, ptr + 8 * i)
            if size:
                if buf + size > self._mem_size:
                    self._check(buf, size)
                return buf, size
        return 0, 0

    # -- fd table --------------------------------------------------------------------------------
    def _entry(self, fd: int) -> FdEntry:
        if not self._table_ready:
            self._create_table()
        entry = self.fds.get(fd)
        if entry is None:
            raise Errno(abi.EBADF)
        return entry

    def _file(self, fd: int) -> FdEntry:
        entry = self._entry(fd)
        if entry.kind != FILE:
            raise Errno(abi.EBADF)
        return entry

    def _directory(self, fd: int) -> int:
        """The backend descriptor of a directory fd given to a path_* call."""
        entry = self._entry(fd)
        if entry.kind != DIRECTORY:
            raise Errno(abi.EBADF)
        return entry.handle

    def _stream_error(self, entry: FdEntry, stdio_errno: int) -> Errno:
        return Errno(stdio_errno if entry.kind <= STDERR else abi.EBADF)

    # -- args, environ ---------------------------------------------------------------------------
    def _argv(self) -> list[bytes]:
        if self._args is None:
            self._args = [a.encode() + b"\0" for a in self.backend.arguments()]
        return self._args

    def _environ(self) -> list[bytes]:
        if self._env is None:
            self._env = [f"{k}={v}".encode() + b"\0" for k, v in self.backend.environment()]
        return self._env

    def _put_strings(self, items: list[bytes], pointers: int, buf: int) -> int:
        self._check(pointers, 4 * len(items))
        self._check(buf, sum(len(s) for s in items))
        for i, item in enumerate(items):
            self._u32(pointers + 4 * i, buf)
            self._put(buf, item)
            buf += len(item)
        return abi.SUCCESS

    def _put_sizes(self, items: list[bytes], count_ptr: int, size_ptr: int) -> int:
        self._u32(count_ptr, len(items))
        self._u32(size_ptr, sum(len(s) for s in items))
        return abi.SUCCESS

    def args_get(self, argv: int, argv_buf: int) -> int:
        return self._put_strings(self._argv(), argv, argv_buf)

    def args_sizes_get(self, argc: int, argv_buf_size: int) -> int:
        return self._put_sizes(self._argv(), argc, argv_buf_size)

    def environ_get(self, environ: int, environ_buf: int) -> int:
        return self._put_strings(self._environ(), environ, environ_buf)

    def environ_sizes_get(self, count: int, size: int) -> int:
        return self._put_sizes(self._environ(), count, size)

    # -- clocks, random, scheduling --------------------------------------------------------------
    @staticmethod
    def _clock(clock_id: int) -> Clock:
        # wasmtime serves only the realtime and monotonic clocks to preview 1 guests.
        if clock_id > 1:
            if clock_id >= len(abi.CLOCKS):
                raise _bad_value("clockid")
            raise Errno(abi.EBADF)
        return abi.CLOCKS[clock_id]

    def clock_res_get(self, clock_id: int, resolution: int) -> int:
        self._u64(resolution, self.backend.clock_resolution(self._clock(clock_id)))
        return abi.SUCCESS

    def clock_time_get(self, clock_id: int, precision: int, time: int) -> int:
        self._u64(time, self.backend.clock_now(self._clock(clock_id)))
        return abi.SUCCESS

    def random_get(self, buf: int, size: int) -> int:
        self._check(buf, size)
        self._put(buf, self.backend.random_bytes(size))
        return abi.SUCCESS

    def sched_yield(self) -> int:
        return abi.SUCCESS

    def proc_exit(self, status: int) -> None:
        if status >= 126:
            # wasmtime traps instead of exiting with a status a shell reserves.
            raise GuestTrap("exit with invalid exit status outside of [0..126)")
        self.backend.exit(status)
        raise GuestExit(status)

    def proc_raise(self, signal: int) -> int:
        return abi.ENOTSUP

    # -- reading and writing ---------------------------------------------------------------------
    def fd_read(self, fd: int, iovs: int, iovs_len: int, nread: int) -> int:
        entry = self._entry(fd)
        buf, size = self._first_iovec(iovs, iovs_len)
        kind = entry.kind
        if kind == FILE:
            data = self.backend.read(entry.handle, size, entry.position) if size else b""
            entry.position += len(data)
        elif kind == STDIN:
            data = self.backend.read_stdin(size) if size else b""
        else:
            raise Errno(abi.EBADF)
        self.mem[buf : buf + len(data)] = data
        self._u32(nread, len(data))
        return abi.SUCCESS

    def fd_pread(self, fd: int, iovs: int, iovs_len: int, offset: int, nread: int) -> int:
        entry = self._entry(fd)
        if entry.kind != FILE:
            raise self._stream_error(entry, abi.ESPIPE if entry.kind == STDIN else abi.EBADF)
        buf, size = self._first_iovec(iovs, iovs_len)
        data = self.backend.read(entry.handle, size, offset) if size else b""
        self.mem[buf : buf + len(data)] = data
        self._u32(nread, len(data))
        return abi.SUCCESS

    def fd_write(self, fd: int, iovs: int, iovs_len: int, nwritten: int) -> int:
        entry = self._entry(fd)
        buf, size = self._first_iovec(iovs, iovs_len)
        kind = entry.kind
        if kind == FILE:
            data = self.mem[buf : buf + size].tobytes()
            if entry.append:
                written = self.backend.append(entry.handle, data)
                entry.position = self.backend.stat(entry.handle).size
            else:
                written = self.backend.write(entry.handle, data, entry.position)
                entry.position += written
        elif kind == STDOUT:
            if size:
                self.backend.write_stdout(self.mem[buf : buf + size].tobytes())
            written = size
        elif kind == STDERR:
            if size:
                self.backend.write_stderr(self.mem[buf : buf + size].tobytes())
            written = size
        else:
            raise Errno(abi.EBADF)
        self._u32(nwritten, written)
        return abi.SUCCESS

    def fd_pwrite(self, fd: int, iovs: int, iovs_len: int, offset: int, nwritten: int) -> int:
        entry = self._entry(fd)
        if entry.kind != FILE:
            raise self._stream_error(entry, abi.EBADF if entry.kind == STDIN else abi.ESPIPE)
        buf, size = self._first_iovec(iovs, iovs_len)
        data = self.mem[buf : buf + size].tobytes()
        if entry.append:
            written = self.backend.append(entry.handle, data)
        else:
            written = self.backend.write(entry.handle, data, offset)
        self._u32(nwritten, written)
        return abi.SUCCESS

    def fd_seek(self, fd: int, offset: int, whence: int, newoffset: int) -> int:
        if whence > abi.WHENCE_END:
            raise _bad_value("whence")
        entry = self._entry(fd)
        if entry.kind != FILE:
            raise self._stream_error(entry, abi.ESPIPE)
        if offset & _I64_SIGN:
            offset -= 1 << 64
        if whence == abi.WHENCE_SET:
            position = offset
        elif whence == abi.WHENCE_CUR:
            position = entry.position + offset
        else:
            position = self.backend.stat(entry.handle).size + offset
        if position < 0 or position > _U64_MAX:
            raise Errno(abi.EINVAL)
        entry.position = position
        self._u64(newoffset, position)
        return abi.SUCCESS

    def fd_tell(self, fd: int, offset: int) -> int:
        entry = self._entry(fd)
        if entry.kind != FILE:
            raise self._stream_error(entry, abi.ESPIPE)
        self._u64(offset, entry.position)
        return abi.SUCCESS

    # -- descriptor state ------------------------------------------------------------------------
    def fd_close(self, fd: int) -> int:
        entry = self._entry(fd)
        self._release_fd(fd)
        if entry.handle >= 0:
            self.backend.close(entry.handle)
        return abi.SUCCESS

    def fd_renumber(self, fd: int, to: int) -> int:
        target = self._entry(to)
        entry = self._entry(fd)
        if fd == to:
            return abi.SUCCESS
        self._release_fd(fd)
        self.fds[to] = entry
        if target.handle >= 0:
            self.backend.close(target.handle)
        return abi.SUCCESS

    def fd_fdstat_get(self, fd: int, stat: int) -> int:
        entry = self._entry(fd)
        kind = entry.kind
        if kind == STDIN:
            packed = abi.FDSTAT.pack(abi.FILETYPE_UNKNOWN, 0, abi.RIGHT_FD_READ, abi.RIGHT_FD_READ)
        elif kind <= STDERR:
            packed = abi.FDSTAT.pack(
                abi.FILETYPE_UNKNOWN, 0, abi.RIGHT_FD_WRITE, abi.RIGHT_FD_WRITE
            )
        elif entry.preopen is not None:
            packed = abi.FDSTAT.pack(
                abi.FILETYPE_DIRECTORY, 0, abi.RIGHTS_PREOPEN_BASE, abi.RIGHTS_PREOPEN_INHERITING
            )
        else:
            rights = abi.RIGHTS_ALL
            if kind == DIRECTORY:
                rights &= ~abi.RIGHTS_NOT_ON_DIRECTORIES
            if not entry.flags & _READ:
                rights &= ~abi.RIGHTS_READING
            if not entry.flags & _WRITE:
                rights &= ~abi.RIGHT_FD_WRITE
            fdflags = 0
            if kind == FILE:
                fdflags = (abi.FDFLAGS_APPEND if entry.append else 0) | (
                    abi.FDFLAGS_NONBLOCK if entry.nonblock else 0
                )
            packed = abi.FDSTAT.pack(entry.filetype, fdflags, rights, rights)
        self._put(stat, packed)
        return abi.SUCCESS

    def fd_fdstat_set_flags(self, fd: int, flags: int) -> int:
        if flags & ~abi.FDFLAGS_ALL:
            raise _bad_value("fdflags")
        entry = self._file(fd)
        if flags & (abi.FDFLAGS_DSYNC | abi.FDFLAGS_RSYNC | abi.FDFLAGS_SYNC):
            raise Errno(abi.EINVAL)
        entry.append = bool(flags & abi.FDFLAGS_APPEND)
        entry.nonblock = bool(flags & abi.FDFLAGS_NONBLOCK)
        return abi.SUCCESS

    def fd_fdstat_set_rights(self, fd: int, base: int, inheriting: int) -> int:
        if self._entry(fd).kind <= STDERR:
            raise Errno(abi.EBADF)
        return abi.ENOTSUP

    def fd_prestat_get(self, fd: int, prestat: int) -> int:
        entry = self._entry(fd)
        if entry.preopen is None:
            raise Errno(abi.EBADF)
        self._put(prestat, abi.PRESTAT.pack(0, len(entry.preopen)))
        return abi.SUCCESS

    def fd_prestat_dir_name(self, fd: int, path: int, path_len: int) -> int:
        entry = self._entry(fd)
        if entry.preopen is None:
            raise Errno(abi.ENOTDIR)
        if path_len < len(entry.preopen):
            raise Errno(abi.ENAMETOOLONG)
        self._put(path, entry.preopen)
        return abi.SUCCESS

    # -- file metadata ---------------------------------------------------------------------------
    def _put_filestat(self, ptr: int, st: DescriptorStat) -> None:
        # wasmtime reports device 1 for every file.
        self._put(
            ptr,
            abi.FILESTAT.pack(
                1,
                st.inode,
                abi.FILETYPE_OF_TYPE[st.type],
                st.link_count,
                st.size,
                st.data_access_timestamp or 0,
                st.data_modification_timestamp or 0,
                st.status_change_timestamp or 0,
            ),
        )

    def fd_filestat_get(self, fd: int, buf: int) -> int:
        entry = self._entry(fd)
        if entry.handle < 0:
            self._put(buf, abi.FILESTAT.pack(0, 0, entry.filetype, 0, 0, 0, 0, 0))
        else:
            self._put_filestat(buf, self.backend.stat(entry.handle))
        return abi.SUCCESS

    def path_filestat_get(self, fd: int, flags: int, path: int, path_len: int, buf: int) -> int:
        if flags & ~abi.LOOKUP_SYMLINK_FOLLOW:
            raise _bad_value("lookupflags")
        handle = self._directory(fd)
        self._put_filestat(buf, self.backend.stat_at(handle, flags, self._path(path, path_len)))
        return abi.SUCCESS

    def fd_filestat_set_size(self, fd: int, size: int) -> int:
        entry = self._file(fd)
        if size & _I64_SIGN:
            raise Errno(abi.EINVAL)
        self.backend.set_size(entry.handle, size)
        return abi.SUCCESS

    @staticmethod
    def _timestamps(atim: int, mtim: int, fst_flags: int) -> tuple[NewTimestamp, NewTimestamp]:
        if fst_flags & ~abi.FSTFLAGS_ALL:
            raise _bad_value("fstflags")
        if (fst_flags & abi.FSTFLAGS_ATIM and fst_flags & abi.FSTFLAGS_ATIM_NOW) or (
            fst_flags & abi.FSTFLAGS_MTIM and fst_flags & abi.FSTFLAGS_MTIM_NOW
        ):
            raise Errno(abi.EINVAL)

        def pick(value: int, set_flag: int, now_flag: int) -> NewTimestamp:
            if fst_flags & set_flag:
                return value
            return NOW if fst_flags & now_flag else None

        return (
            pick(atim, abi.FSTFLAGS_ATIM, abi.FSTFLAGS_ATIM_NOW),
            pick(mtim, abi.FSTFLAGS_MTIM, abi.FSTFLAGS_MTIM_NOW),
        )

    def fd_filestat_set_times(self, fd: int, atim: int, mtim: int, fst_flags: int) -> int:
        access, modification = self._timestamps(atim, mtim, fst_flags)
        entry = self._entry(fd)
        if entry.handle < 0:
            raise Errno(abi.EBADF)
        self.backend.set_times(entry.handle, access, modification)
        return abi.SUCCESS

    def path_filestat_set_times(
        self, fd: int, flags: int, path: int, path_len: int, atim: int, mtim: int, fst_flags: int
    ) -> int:
        access, modification = self._timestamps(atim, mtim, fst_flags)
        if flags & ~abi.LOOKUP_SYMLINK_FOLLOW:
            raise _bad_value("lookupflags")
        handle = self._directory(fd)
        self.backend.set_times_at(handle, flags, self._path(path, path_len), access, modification)
        return abi.SUCCESS

    def fd_allocate(self, fd: int, offset: int, length: int) -> int:
        self._file(fd)
        return abi.ENOTSUP

    def fd_advise(self, fd: int, offset: int, length: int, advice: int) -> int:
        if advice >= len(abi.ADVICE):
            raise _bad_value("advice")
        entry = self._file(fd)
        self.backend.advise(entry.handle, offset, length, abi.ADVICE[advice])
        return abi.SUCCESS

    def fd_sync(self, fd: int) -> int:
        self.backend.sync(self._file(fd).handle)
        return abi.SUCCESS

    def fd_datasync(self, fd: int) -> int:
        self.backend.sync_data(self._file(fd).handle)
        return abi.SUCCESS

    # -- directories -----------------------------------------------------------------------------
    def fd_readdir(self, fd: int, buf: int, buf_len: int, cookie: int, bufused: int) -> int:
        handle = self._directory(fd)
        self._check(buf, buf_len)
        # Like wasmtime, every call lists the directory afresh and the cookie counts entries to
        # skip; "." and ".." come first, both with the directory's own inode.
        own = self.backend.stat(handle).inode
        listing = [
            DirectoryEntry(DescriptorType.DIRECTORY, ".", own),
            DirectoryEntry(DescriptorType.DIRECTORY, "..", own),
            *self.backend.read_directory(handle),
        ]
        out = bytearray()
        for index in range(cookie, len(listing)):
            item = listing[index]
            name = item.name.encode()
            out += abi.DIRENT.pack(
                index + 1, item.inode, len(name), abi.FILETYPE_OF_TYPE[item.type]
            )
            out += name
            if len(out) >= buf_len:
                break
        data = bytes(out[:buf_len])
        self._put(buf, data)
        self._u32(bufused, len(data))
        return abi.SUCCESS

    def path_open(
        self,
        fd: int,
        dirflags: int,
        path: int,
        path_len: int,
        oflags: int,
        rights_base: int,
        rights_inheriting: int,
        fdflags: int,
        opened: int,
    ) -> int:
        if (
            dirflags & ~abi.LOOKUP_SYMLINK_FOLLOW
            or oflags & ~abi.OFLAGS_ALL
            or fdflags & ~abi.FDFLAGS_ALL
            or rights_base & ~abi.RIGHTS_ALL
            or rights_inheriting & ~abi.RIGHTS_ALL
        ):
            raise _bad_value("flags or rights")
        name = self._path(path, path_len)
        directory = self._entry(fd)
        if directory.kind != DIRECTORY:
            raise Errno(abi.ENOTDIR if directory.kind == FILE else abi.EBADF)
        if fdflags & (abi.FDFLAGS_SYNC | abi.FDFLAGS_DSYNC | abi.FDFLAGS_RSYNC):
            raise Errno(abi.ENOTSUP)
        if oflags & _DIRECTORY and oflags & _NOT_WITH_DIRECTORY:
            raise Errno(abi.EINVAL)
        # The open mode as wasmtime derives it: creating or truncating implies writing, and a
        # descriptor that does not write always reads.
        flags = 0
        if rights_base & abi.RIGHT_FD_WRITE or oflags & (_CREATE | _TRUNCATE):
            flags |= _WRITE
        if rights_base & abi.RIGHT_FD_READ or not rights_base & abi.RIGHT_FD_WRITE:
            flags |= _READ
        if oflags & _EXCLUSIVE and not oflags & _CREATE:
            oflags &= ~_EXCLUSIVE
        # Like wasmtime, open without O_DIRECTORY and check the type afterwards: a symlink
        # that is not followed is then `loop`, as O_NOFOLLOW makes it, not `not-directory`.
        want_directory = oflags & _DIRECTORY
        handle = self.backend.open_at(directory.handle, dirflags, name, oflags & ~_DIRECTORY, flags)
        try:
            filetype = abi.FILETYPE_OF_TYPE[self.backend.stat(handle).type]
        except WasiError:
            self.backend.close(handle)
            raise
        if want_directory and filetype != abi.FILETYPE_DIRECTORY:
            self.backend.close(handle)
            raise Errno(abi.ENOTDIR)
        new_fd = self._new_fd()
        if filetype == abi.FILETYPE_DIRECTORY:
            self.fds[new_fd] = FdEntry(DIRECTORY, handle=handle, filetype=filetype, flags=flags)
        else:
            self.fds[new_fd] = FdEntry(
                FILE,
                handle=handle,
                filetype=filetype,
                flags=flags,
                append=bool(fdflags & abi.FDFLAGS_APPEND),
                nonblock=bool(fdflags & abi.FDFLAGS_NONBLOCK),
            )
        self._u32(opened, new_fd)
        return abi.SUCCESS

    def path_create_directory(self, fd: int, path: int, path_len: int) -> int:
        handle = self._directory(fd)
        self.backend.create_directory_at(handle, self._path(path, path_len))
        return abi.SUCCESS

    def path_remove_directory(self, fd: int, path: int, path_len: int) -> int:
        handle = self._directory(fd)
        self.backend.remove_directory_at(handle, self._path(path, path_len))
        return abi.SUCCESS

    def path_unlink_file(self, fd: int, path: int, path_len: int) -> int:
        handle = self._directory(fd)
        self.backend.unlink_file_at(handle, self._path(path, path_len))
        return abi.SUCCESS

    def path_rename(
        self, fd: int, old_path: int, old_len: int, new_fd: int, new_path: int, new_len: int
    ) -> int:
        old = self._directory(fd)
        new = self._directory(new_fd)
        self.backend.rename_at(
            old, self._path(old_path, old_len), new, self._path(new_path, new_len)
        )
        return abi.SUCCESS

    def path_link(
        self,
        old_fd: int,
        old_flags: int,
        old_path: int,
        old_len: int,
        new_fd: int,
        new_path: int,
        new_len: int,
    ) -> int:
        if old_flags & ~abi.LOOKUP_SYMLINK_FOLLOW:
            raise _bad_value("lookupflags")
        old = self._directory(old_fd)
        new = self._directory(new_fd)
        source = self._path(old_path, old_len)
        target = self._path(new_path, new_len)
        if old_flags:
            # wasmtime refuses to link through a symlink.
            raise Errno(abi.EINVAL)
        self.backend.link_at(old, 0, source, new, target)
        return abi.SUCCESS

    def path_symlink(
        self, old_path: int, old_len: int, fd: int, new_path: int, new_len: int
    ) -> int:
        target = self._path(old_path, old_len)
        handle = self._directory(fd)
        self.backend.symlink_at(handle, target, self._path(new_path, new_len))
        return abi.SUCCESS

    def path_readlink(
        self, fd: int, path: int, path_len: int, buf: int, buf_len: int, bufused: int
    ) -> int:
        handle = self._directory(fd)
        target = self.backend.readlink_at(handle, self._path(path, path_len)).encode()
        data = target[:buf_len]
        self._put(buf, data)
        self._u32(bufused, len(data))
        return abi.SUCCESS

    # -- poll ------------------------------------------------------------------------------------
    def poll_oneoff(self, subscriptions: int, events: int, count: int, nevents: int) -> int:
        if count == 0:
            raise Errno(abi.EINVAL)
        self._check(subscriptions, abi.SUBSCRIPTION.size * count)
        self._check(events, abi.EVENT.size * count)
        subs = [
            abi.SUBSCRIPTION.unpack_from(self.mem, subscriptions + abi.SUBSCRIPTION.size * i)
            for i in range(count)
        ]
        for _userdata, tag, _ident, _timeout, _precision, sflags in subs:
            if tag > abi.EVENTTYPE_FD_WRITE or (
                tag == abi.EVENTTYPE_CLOCK and sflags & ~abi.SUBCLOCKFLAGS_ABSTIME
            ):
                raise _bad_value("subscription")
        if count == 1 and subs[0][1] == abi.EVENTTYPE_CLOCK and not subs[0][5]:
            # wasmtime's shortcut for a plain sleep (it reports nbytes 1 here).
            self.backend.sleep(subs[0][3])
            self._put(events, abi.EVENT.pack(subs[0][0], 0, abi.EVENTTYPE_CLOCK, 1, 0))
            self._u32(nevents, 1)
            return abi.SUCCESS
        ready: list[bytes] = []
        timers: list[tuple[int, int]] = []  # (nanoseconds from now, userdata)
        for userdata, tag, ident, timeout, _precision, sflags in subs:
            if tag == abi.EVENTTYPE_CLOCK:
                if ident > 1:
                    if ident >= len(abi.CLOCKS):
                        raise _bad_value("clockid")
                    raise Errno(abi.EINVAL)
                if sflags & abi.SUBCLOCKFLAGS_ABSTIME:
                    now = self.backend.clock_now(abi.CLOCKS[ident])
                    timers.append((max(0, timeout - now), userdata))
                else:
                    timers.append((timeout, userdata))
            else:
                ready.append(self._fd_event(userdata, tag, ident))
        if not ready:
            wait = min(t for t, _ in timers)
            if wait > 0:
                self.backend.sleep(wait)
            ready = [
                abi.EVENT.pack(userdata, 0, abi.EVENTTYPE_CLOCK, 0, 0)
                for t, userdata in timers
                if t <= wait
            ]
        for i, event in enumerate(ready):
            self._put(events + abi.EVENT.size * i, event)
        self._u32(nevents, len(ready))
        return abi.SUCCESS

    def _fd_event(self, userdata: int, tag: int, fd: int) -> bytes:
        entry = self._entry(fd)
        flags = 0
        if entry.kind == FILE:
            if (
                tag == abi.EVENTTYPE_FD_READ
                and self.backend.stat(entry.handle).size <= entry.position
            ):
                flags = abi.EVENTRWFLAGS_HANGUP
        elif (tag == abi.EVENTTYPE_FD_READ) != (entry.kind == STDIN):
            raise Errno(abi.EBADF)
        return abi.EVENT.pack(userdata, 0, tag, 1, flags)

    # -- sockets (there are none) ----------------------------------------------------------------
    def sock_accept(self, fd: int, flags: int, opened: int) -> int:
        self._entry(fd)
        return abi.ENOTSOCK

    def sock_recv(
        self, fd: int, ri_data: int, ri_len: int, ri_flags: int, ro_len: int, ro_flags: int
    ) -> int:
        self._entry(fd)
        return abi.ENOTSOCK

    def sock_send(self, fd: int, si_data: int, si_len: int, si_flags: int, so_len: int) -> int:
        self._entry(fd)
        return abi.ENOTSOCK

    def sock_shutdown(self, fd: int, how: int) -> int:
        self._entry(fd)
        return abi.ENOTSOCK

    # -- the import table ------------------------------------------------------------------------
    def functions(self) -> list[HostFunction]:
        table: list[tuple[str, str, str, Callable[..., int | None]]] = [
            ("args_get", "ii", "i", self.args_get),
            ("args_sizes_get", "ii", "i", self.args_sizes_get),
            ("environ_get", "ii", "i", self.environ_get),
            ("environ_sizes_get", "ii", "i", self.environ_sizes_get),
            ("clock_res_get", "ii", "i", self.clock_res_get),
            ("clock_time_get", "iIi", "i", self.clock_time_get),
            ("fd_advise", "iIIi", "i", self.fd_advise),
            ("fd_allocate", "iII", "i", self.fd_allocate),
            ("fd_close", "i", "i", self.fd_close),
            ("fd_datasync", "i", "i", self.fd_datasync),
            ("fd_fdstat_get", "ii", "i", self.fd_fdstat_get),
            ("fd_fdstat_set_flags", "ii", "i", self.fd_fdstat_set_flags),
            ("fd_fdstat_set_rights", "iII", "i", self.fd_fdstat_set_rights),
            ("fd_filestat_get", "ii", "i", self.fd_filestat_get),
            ("fd_filestat_set_size", "iI", "i", self.fd_filestat_set_size),
            ("fd_filestat_set_times", "iIIi", "i", self.fd_filestat_set_times),
            ("fd_pread", "iiiIi", "i", self.fd_pread),
            ("fd_prestat_get", "ii", "i", self.fd_prestat_get),
            ("fd_prestat_dir_name", "iii", "i", self.fd_prestat_dir_name),
            ("fd_pwrite", "iiiIi", "i", self.fd_pwrite),
            ("fd_read", "iiii", "i", self.fd_read),
            ("fd_readdir", "iiiIi", "i", self.fd_readdir),
            ("fd_renumber", "ii", "i", self.fd_renumber),
            ("fd_seek", "iIii", "i", self.fd_seek),
            ("fd_sync", "i", "i", self.fd_sync),
            ("fd_tell", "ii", "i", self.fd_tell),
            ("fd_write", "iiii", "i", self.fd_write),
            ("path_create_directory", "iii", "i", self.path_create_directory),
            ("path_filestat_get", "iiiii", "i", self.path_filestat_get),
            ("path_filestat_set_times", "iiiiIIi", "i", self.path_filestat_set_times),
            ("path_link", "iiiiiii", "i", self.path_link),
            ("path_open", "iiiiiIIii", "i", self.path_open),
            ("path_readlink", "iiiiii", "i", self.path_readlink),
            ("path_remove_directory", "iii", "i", self.path_remove_directory),
            ("path_rename", "iiiiii", "i", self.path_rename),
            ("path_symlink", "iiiii", "i", self.path_symlink),
            ("path_unlink_file", "iii", "i", self.path_unlink_file),
            ("poll_oneoff", "iiii", "i", self.poll_oneoff),
            ("proc_exit", "i", "", self.proc_exit),
            ("proc_raise", "i", "i", self.proc_raise),
            ("random_get", "ii", "i", self.random_get),
            ("sched_yield", "", "i", self.sched_yield),
            ("sock_accept", "iii", "i", self.sock_accept),
            ("sock_recv", "iiiiii", "i", self.sock_recv),
            ("sock_send", "iiiii", "i", self.sock_send),
            ("sock_shutdown", "ii", "i", self.sock_shutdown),
        ]
        return [HostFunction(name, params, results, impl) for name, params, results, impl in table]
