"""HostDirBackend: a `tracer.backend.Filesystem` over a real host directory, confined to it.

A guest must never reach outside the directory it was given, by `..`, absolute paths, symlinks
or a race between a check and a use. So no path is checked as a string and then used: every
lookup goes through `_openat2` (openat2 with RESOLVE_BENEATH, or a manual walk over held
descriptors where the kernel lacks it; `resolution` says which), and operations that act on a
name -- unlink, mkdir, rename, link, symlink -- resolve the *parent* that way and then call the
`*at` function with a single final component, never '..'. Resolution is beneath the descriptor
the guest passes, as for a wasmtime/cap-std `Dir`: `..` out of a subdirectory descriptor is an
escape too, and escapes are `not-permitted`.

Error codes are Linux's, in Linux's order, as the memory backend gives them (the shared contract
and `tests/test_backends_agree.py` hold the two together); the preview 1 host layer adds
wasmtime's own checks on top. Like wasmtime, symlinks with absolute targets are refused, and the
host access mode follows wasmtime's choice (CREATE or TRUNCATE open the file read-write; without
WRITE it is opened for reading), while READ and WRITE decide what the descriptor may do. A
read-only mount refuses every change with `not-permitted` before touching the host.

Cost matters (each call is a guest host call): one system call for a single-name `stat_at`,
`unlink`, `mkdir` and friends, one openat2 per `open_at`, pread/pwrite for I/O.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import os
import stat as _stat
from collections.abc import Callable
from types import TracebackType

from tracer.backend import (
    Advice,
    DescriptorFlags,
    DescriptorStat,
    DescriptorType,
    DirectoryEntry,
    NewTimestamp,
    OpenFlags,
    PathFlags,
)
from tracer.backends import _openat2
from tracer.errors import ErrorCode, WasiError, from_os_error

ROOT = 0

_FOLLOW = PathFlags.SYMLINK_FOLLOW.value
_CREATE = OpenFlags.CREATE.value
_DIRECTORY = OpenFlags.DIRECTORY.value
_EXCLUSIVE = OpenFlags.EXCLUSIVE.value
_TRUNCATE = OpenFlags.TRUNCATE.value
_READ = DescriptorFlags.READ.value
_WRITE = DescriptorFlags.WRITE.value
_OS_SYNC_FLAGS = (
    (DescriptorFlags.FILE_INTEGRITY_SYNC.value, os.O_SYNC),
    (DescriptorFlags.DATA_INTEGRITY_SYNC.value, os.O_DSYNC),
    (DescriptorFlags.REQUESTED_WRITE_SYNC.value, os.O_RSYNC),
)
_SYNC_FLAGS = sum(flag for flag, _ in _OS_SYNC_FLAGS)

_O_PATH = os.O_PATH | os.O_CLOEXEC
_O_PATH_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
_O_PATH_NOFOLLOW = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_O_BASE = os.O_CLOEXEC | os.O_NOCTTY
_MAX_OFFSET = 2**63 - 1  # off_t
_FILE_MODE = 0o666  # less the umask, as wasmtime (Rust's std) creates files
_DIR_MODE = 0o777

_TYPE_BY_FORMAT = {
    _stat.S_IFREG: DescriptorType.REGULAR_FILE,
    _stat.S_IFDIR: DescriptorType.DIRECTORY,
    _stat.S_IFLNK: DescriptorType.SYMBOLIC_LINK,
    _stat.S_IFCHR: DescriptorType.CHARACTER_DEVICE,
    _stat.S_IFBLK: DescriptorType.BLOCK_DEVICE,
    _stat.S_IFIFO: DescriptorType.FIFO,
    _stat.S_IFSOCK: DescriptorType.SOCKET,
}

_OS_ADVICE = {
    Advice.NORMAL: os.POSIX_FADV_NORMAL,
    Advice.SEQUENTIAL: os.POSIX_FADV_SEQUENTIAL,
    Advice.RANDOM: os.POSIX_FADV_RANDOM,
    Advice.WILL_NEED: os.POSIX_FADV_WILLNEED,
    Advice.DONT_NEED: os.POSIX_FADV_DONTNEED,
    Advice.NO_REUSE: os.POSIX_FADV_NOREUSE,
}


class _Open:
    """One descriptor: the host fd, what the guest may do with it, and whether it is a directory."""

    __slots__ = ("fd", "is_dir", "readable", "writable")

    def __init__(self, fd: int, readable: bool, writable: bool, is_dir: bool | None) -> None:
        self.fd = fd
        self.readable = readable
        self.writable = writable
        self.is_dir = is_dir  # None until something needs to know


def _bad_descriptor(fd: int) -> WasiError:
    return WasiError(ErrorCode.BAD_DESCRIPTOR, f"descriptor {fd}")


def _descriptor_stat(st: os.stat_result) -> DescriptorStat:
    return DescriptorStat(
        st.st_dev,
        st.st_ino,
        _TYPE_BY_FORMAT.get(_stat.S_IFMT(st.st_mode), DescriptorType.UNKNOWN),
        st.st_nlink,
        st.st_size,
        st.st_atime_ns,
        st.st_mtime_ns,
        st.st_ctime_ns,
    )


def _check_path(path: str) -> None:
    """Refuse what no lookup needs to see; the kernel still confines everything else."""
    if not path:
        raise WasiError(ErrorCode.NO_ENTRY, "empty path")
    if "\0" in path:
        raise WasiError(ErrorCode.INVALID, "path contains a NUL byte")
    if path[0] == "/":
        raise WasiError(ErrorCode.NOT_PERMITTED, f"absolute path {path!r}")
    if not path.isascii():
        _check_utf8(path)


def _check_utf8(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise WasiError(ErrorCode.ILLEGAL_BYTE_SEQUENCE, repr(text)) from None
    return text


def _timespec(value: NewTimestamp) -> _openat2.Timespec:
    if value is None:
        return (0, _openat2.UTIME_OMIT)
    if value == "now":
        return (0, _openat2.UTIME_NOW)
    return divmod(value, 1_000_000_000)


def _entry_type(entry: os.DirEntry[str]) -> DescriptorType:
    # These three answer from d_type without a system call on every common filesystem.
    if entry.is_file(follow_symlinks=False):
        return DescriptorType.REGULAR_FILE
    if entry.is_dir(follow_symlinks=False):
        return DescriptorType.DIRECTORY
    if entry.is_symlink():
        return DescriptorType.SYMBOLIC_LINK
    try:
        mode = entry.stat(follow_symlinks=False).st_mode
    except FileNotFoundError:
        return DescriptorType.UNKNOWN
    return _TYPE_BY_FORMAT.get(_stat.S_IFMT(mode), DescriptorType.UNKNOWN)


class HostDirBackend:
    """A host directory as a `Filesystem`; see the module docstring for the confinement rules."""

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        self.path = os.fspath(path)
        self.read_only = read_only
        try:
            root_fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise FileNotFoundError(
                errno.ENOENT, "host directory does not exist", self.path
            ) from None
        except NotADirectoryError:
            raise NotADirectoryError(
                errno.ENOTDIR, "host path is not a directory", self.path
            ) from None
        try:
            self._open_beneath = _openat2.choose(root_fd)
        except BaseException:
            os.close(root_fd)
            raise
        # "openat2" (the kernel confines lookups) or "manual" (we walk and confine them).
        self.resolution = (
            "openat2" if self._open_beneath is _openat2.open_beneath_kernel else "manual"
        )
        self._table: dict[int, _Open] = {ROOT: _Open(root_fd, True, False, True)}
        self._free: list[int] = []  # closed numbers, reused lowest first as POSIX does
        self._next = ROOT + 1

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else ""
        return f"HostDirBackend({self.path!r}{mode})"

    # -- life cycle ---------------------------------------------------------------------------

    def close_all(self) -> None:
        """Close every host descriptor, the root too; the backend is unusable afterwards."""
        table, self._table = self._table, {}
        for entry in table.values():
            os.close(entry.fd)

    def __del__(self) -> None:
        # A backend dropped without close_all() must not keep its host descriptors open.
        for entry in getattr(self, "_table", {}).values():
            with contextlib.suppress(OSError):
                os.close(entry.fd)

    def __enter__(self) -> HostDirBackend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close_all()

    # -- descriptors --------------------------------------------------------------------------

    def root(self) -> int:
        return ROOT

    def _get(self, fd: int) -> _Open:
        entry = self._table.get(fd)
        if entry is None:
            raise _bad_descriptor(fd)
        return entry

    def _add(self, host_fd: int, readable: bool, writable: bool, is_dir: bool | None) -> int:
        fd = heapq.heappop(self._free) if self._free else self._next
        if fd == self._next:
            self._next += 1
        self._table[fd] = _Open(host_fd, readable, writable, is_dir)
        return fd

    def _is_dir(self, entry: _Open) -> bool:
        if entry.is_dir is None:
            try:
                entry.is_dir = _stat.S_ISDIR(os.fstat(entry.fd).st_mode)
            except OSError as exc:
                raise from_os_error(exc) from None
        return entry.is_dir

    def _require_directory(self, entry: _Open) -> None:
        if not self._is_dir(entry):
            raise WasiError(ErrorCode.NOT_DIRECTORY, "the descriptor is not a directory")

    def _check_path(self, entry: _Open, path: str) -> None:
        """`_check_path`, after `not-directory` for a file descriptor as Linux's *at calls say."""
        if path and path[0] != "/" and path.isascii() and "\0" not in path:
            return
        self._require_directory(entry)
        _check_path(path)

    def _refuse_change(self, entry: _Open, what: str) -> None:
        """A read-only mount refuses a change, as wasmtime does, after checking the descriptor."""
        self._require_directory(entry)
        raise WasiError(ErrorCode.NOT_PERMITTED, f"{what}: the mount is read-only")

    def close(self, fd: int) -> None:
        if fd == ROOT:
            return  # the root stays open for the life of the mount
        entry = self._table.pop(fd, None)
        if entry is None:
            raise _bad_descriptor(fd)
        heapq.heappush(self._free, fd)
        try:
            os.close(entry.fd)
        except OSError as exc:
            raise from_os_error(exc) from None

    # -- resolution ---------------------------------------------------------------------------

    def _open_path(self, dir_fd: int, path: str, flags: int) -> int:
        """An O_PATH (or other) descriptor for `path` beneath `dir_fd`; errors as WasiError."""
        try:
            return self._open_beneath(dir_fd, path, flags, 0)
        except OSError as exc:
            raise from_os_error(exc) from None

    def _parent(self, dir_fd: int, path: str) -> tuple[int, str, bool]:
        """(directory fd, final name, whether the caller must close the fd) for `path`.

        The name is one component. It may be '..', which callers must never hand to a system
        call (relative to the root it names the directory outside); `_dotdot` checks it. A
        trailing '/' stays on other names, because the calls that get it (mkdirat, unlinkat,
        renameat, symlinkat, the new name of linkat) test it without following a symlink.
        """
        if "/" not in path:
            return dir_fd, path, False
        stripped = path.rstrip("/")
        head, _, name = stripped.rpartition("/")
        if len(stripped) != len(path) and name != "..":
            name += "/"
        if not head:
            return dir_fd, name, False
        return self._open_path(dir_fd, head, _O_PATH_DIR), name, True

    def _dotdot(self, dir_fd: int, path: str) -> None:
        """For a `path` ending in '..': not-permitted if that climbs above `dir_fd`.

        Checked where Linux (and the memory backend) would look at the final '..', which is
        after the parents are resolved; each caller then fails as Linux does for '..'.
        """
        os.close(self._open_path(dir_fd, path, _O_PATH_DIR))

    # -- files --------------------------------------------------------------------------------

    def open_at(self, fd: int, path_flags: int, path: str, open_flags: int, flags: int) -> int:
        # Plain ints: IntFlag arithmetic costs microseconds per operator on this hot path.
        open_flags = int(open_flags)
        flags = int(flags)
        if open_flags & _DIRECTORY and open_flags & _CREATE:
            # Linux refuses this before looking at the descriptor (EINVAL since 6.4; older
            # kernels would create a file and then say ENOTDIR).
            raise WasiError(ErrorCode.INVALID, "cannot create a directory with open_at")
        entry = self._get(fd)
        if self.read_only and (open_flags & (_CREATE | _TRUNCATE) or flags & _WRITE):
            self._refuse_change(entry, "open for writing")
        self._check_path(entry, path)
        # Access mode as wasmtime picks it: create/truncate need write; no write means read.
        writes = flags & _WRITE or open_flags & (_CREATE | _TRUNCATE)
        if flags & _READ or not flags & _WRITE:
            os_flags = _O_BASE | (os.O_RDWR if writes else os.O_RDONLY)
        else:
            os_flags = _O_BASE | os.O_WRONLY
        if open_flags & _CREATE:
            os_flags |= os.O_CREAT | os.O_EXCL if open_flags & _EXCLUSIVE else os.O_CREAT
        if open_flags & _TRUNCATE:
            os_flags |= os.O_TRUNC
        if open_flags & _DIRECTORY:
            os_flags |= os.O_DIRECTORY
        if not int(path_flags) & _FOLLOW:
            os_flags |= os.O_NOFOLLOW
        if flags & _SYNC_FLAGS:
            for flag, os_flag in _OS_SYNC_FLAGS:
                if flags & flag:
                    os_flags |= os_flag
        try:
            host_fd = self._open_beneath(entry.fd, path, os_flags, _FILE_MODE)
        except OSError as exc:
            raise from_os_error(exc) from None
        return self._add(
            host_fd,
            bool(flags & _READ),
            bool(flags & _WRITE),
            True if open_flags & _DIRECTORY else None,
        )

    def read(self, fd: int, length: int, offset: int) -> bytes:
        entry = self._table.get(fd)
        if entry is None or not entry.readable:
            raise _bad_descriptor(fd)
        try:
            return os.pread(entry.fd, length, offset)
        except OSError as exc:
            raise from_os_error(exc) from None
        except (OverflowError, ValueError) as exc:
            if offset > _MAX_OFFSET and 0 <= length <= _MAX_OFFSET:
                return b""  # past the end of any file there can be
            raise WasiError(ErrorCode.INVALID, str(exc)) from None
        except MemoryError:
            raise WasiError(ErrorCode.INSUFFICIENT_MEMORY, f"a {length}-byte read") from None

    def write(self, fd: int, data: bytes, offset: int) -> int:
        entry = self._table.get(fd)
        if entry is None or not entry.writable:
            raise _bad_descriptor(fd)
        if self.read_only:
            raise WasiError(ErrorCode.NOT_PERMITTED, "the mount is read-only")
        try:
            return os.pwrite(entry.fd, data, offset)
        except OSError as exc:
            raise from_os_error(exc) from None
        except (OverflowError, ValueError) as exc:
            if offset > _MAX_OFFSET:
                raise WasiError(ErrorCode.FILE_TOO_LARGE, "past the largest file size") from None
            raise WasiError(ErrorCode.INVALID, str(exc)) from None

    def append(self, fd: int, data: bytes) -> int:
        entry = self._table.get(fd)
        if entry is None or not entry.writable:
            raise _bad_descriptor(fd)
        if self.read_only:
            raise WasiError(ErrorCode.NOT_PERMITTED, "the mount is read-only")
        try:
            # RWF_APPEND: an O_APPEND write for this call only, atomic with other appenders,
            # in one system call and without an O_APPEND descriptor (which would make pwrite
            # append too).
            return os.pwritev(entry.fd, (data,), 0, os.RWF_APPEND)
        except OSError as exc:
            raise from_os_error(exc) from None

    def stat(self, fd: int) -> DescriptorStat:
        entry = self._get(fd)
        try:
            return _descriptor_stat(os.fstat(entry.fd))
        except OSError as exc:
            raise from_os_error(exc) from None

    def stat_at(self, fd: int, path_flags: int, path: str) -> DescriptorStat:
        entry = self._get(fd)
        self._check_path(entry, path)
        follow = int(path_flags) & _FOLLOW
        if "/" not in path and path != "..":
            # One name in this directory, not followed: fstatat cannot leave it.
            try:
                st = os.stat(path, dir_fd=entry.fd, follow_symlinks=False)
            except OSError as exc:
                raise from_os_error(exc) from None
            if not (follow and _stat.S_ISLNK(st.st_mode)):
                return _descriptor_stat(st)
        host_fd = self._open_path(entry.fd, path, _O_PATH if follow else _O_PATH_NOFOLLOW)
        try:
            return _descriptor_stat(os.fstat(host_fd))
        except OSError as exc:
            raise from_os_error(exc) from None
        finally:
            os.close(host_fd)

    def set_size(self, fd: int, size: int) -> None:
        if size < 0:
            raise WasiError(ErrorCode.INVALID, "negative size")
        entry = self._get(fd)
        if self.read_only:
            raise WasiError(ErrorCode.NOT_PERMITTED, "the mount is read-only")
        if not entry.writable:
            # What ftruncate says for a descriptor not open for writing (every directory);
            # asked here because CREATE opens the host file read-write even without WRITE.
            raise WasiError(ErrorCode.INVALID, f"descriptor {fd} is not open for writing")
        try:
            os.ftruncate(entry.fd, size)
        except OSError as exc:
            raise from_os_error(exc) from None
        except OverflowError:
            raise WasiError(ErrorCode.FILE_TOO_LARGE, "larger than the largest file size") from None

    def set_times(
        self,
        fd: int,
        data_access_timestamp: NewTimestamp,
        data_modification_timestamp: NewTimestamp,
    ) -> None:
        entry = self._get(fd)
        if self.read_only:
            raise WasiError(ErrorCode.NOT_PERMITTED, "the mount is read-only")
        try:
            _openat2.futimens(
                entry.fd, _timespec(data_access_timestamp), _timespec(data_modification_timestamp)
            )
        except OSError as exc:
            raise from_os_error(exc) from None

    def set_times_at(
        self,
        fd: int,
        path_flags: int,
        path: str,
        data_access_timestamp: NewTimestamp,
        data_modification_timestamp: NewTimestamp,
    ) -> None:
        entry = self._get(fd)
        if self.read_only:
            self._refuse_change(entry, "set times")
        self._check_path(entry, path)
        if data_access_timestamp is None and data_modification_timestamp is None:
            # utimensat(UTIME_OMIT, UTIME_OMIT) returns before it looks at the descriptor.
            self._require_directory(entry)
        atime = _timespec(data_access_timestamp)
        mtime = _timespec(data_modification_timestamp)
        if not int(path_flags) & _FOLLOW and not path.endswith("/"):
            parent, name, owned = self._parent(entry.fd, path)
            if name == "..":
                if owned:
                    os.close(parent)
                parent, name, owned = self._open_path(entry.fd, path, _O_PATH_DIR), ".", True
            try:
                _openat2.utimensat(
                    parent, os.fsencode(name), atime, mtime, _openat2.AT_SYMLINK_NOFOLLOW
                )
            except OSError as exc:
                raise from_os_error(exc) from None
            finally:
                if owned:
                    os.close(parent)
            return
        # Followed (or named with a trailing '/', which follows): resolve to the object itself,
        # which is then never a symlink, and set its times through the descriptor.
        host_fd = self._open_path(entry.fd, path, _O_PATH)
        try:
            self._utimens_path_fd(host_fd, atime, mtime)
        except OSError as exc:
            raise from_os_error(exc) from None
        finally:
            os.close(host_fd)

    @staticmethod
    def _utimens_path_fd(host_fd: int, atime: _openat2.Timespec, mtime: _openat2.Timespec) -> None:
        try:
            _openat2.utimensat(host_fd, b"", atime, mtime, _openat2.AT_EMPTY_PATH)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            # Kernels before AT_EMPTY_PATH support in utimensat: go through procfs instead.
            proc = os.fsencode(f"/proc/self/fd/{host_fd}")
            _openat2.utimensat(_openat2.AT_FDCWD, proc, atime, mtime, 0)

    def sync(self, fd: int) -> None:
        entry = self._get(fd)
        try:
            os.fsync(entry.fd)
        except OSError as exc:
            raise from_os_error(exc) from None

    def sync_data(self, fd: int) -> None:
        entry = self._get(fd)
        try:
            os.fdatasync(entry.fd)
        except OSError as exc:
            raise from_os_error(exc) from None

    def advise(self, fd: int, offset: int, length: int, advice: Advice) -> None:
        entry = self._get(fd)
        if offset < 0 or length < 0:
            raise WasiError(ErrorCode.INVALID, "negative offset or length")  # Linux only checks len
        try:
            os.posix_fadvise(entry.fd, offset, length, _OS_ADVICE[Advice(advice)])
        except OSError as exc:
            raise from_os_error(exc) from None
        except OverflowError as exc:
            raise WasiError(ErrorCode.INVALID, str(exc)) from None

    # -- directories --------------------------------------------------------------------------

    def read_directory(self, fd: int) -> list[DirectoryEntry]:
        entry = self._get(fd)
        try:
            with os.scandir(entry.fd) as entries:
                return [
                    DirectoryEntry(
                        _entry_type(item),
                        item.name if item.name.isascii() else _check_utf8(item.name),
                        item.inode(),
                    )
                    for item in entries
                ]
        except OSError as exc:
            raise from_os_error(exc) from None

    def _change_name(
        self,
        fd: int,
        path: str,
        what: str,
        act: Callable[[str, int], None],
        on_dotdot: tuple[ErrorCode, str],
    ) -> None:
        """mkdir/rmdir/unlink: resolve the parent confined, then act on the one final name."""
        entry = self._get(fd)
        if self.read_only:
            self._refuse_change(entry, what)
        self._check_path(entry, path)
        parent, name, owned = self._parent(entry.fd, path)
        try:
            if name == "..":
                # Never handed to the kernel: it would name the parent's parent.
                self._dotdot(entry.fd, path)
                raise WasiError(on_dotdot[0], on_dotdot[1].format(path=path))
            act(name, parent)
        except OSError as exc:
            raise from_os_error(exc) from None
        finally:
            if owned:
                os.close(parent)

    def create_directory_at(self, fd: int, path: str) -> None:
        self._change_name(
            fd,
            path,
            "create directory",
            lambda name, parent: os.mkdir(name, _DIR_MODE, dir_fd=parent),
            (ErrorCode.EXIST, "{path!r} exists"),
        )

    def remove_directory_at(self, fd: int, path: str) -> None:
        self._change_name(
            fd,
            path,
            "remove directory",
            lambda name, parent: os.rmdir(name, dir_fd=parent),
            (ErrorCode.NOT_EMPTY, "cannot remove {path!r}"),
        )

    def unlink_file_at(self, fd: int, path: str) -> None:
        self._change_name(
            fd,
            path,
            "unlink",
            lambda name, parent: os.unlink(name, dir_fd=parent),
            (ErrorCode.IS_DIRECTORY, "{path!r} is a directory"),
        )

    def rename_at(self, fd: int, old_path: str, new_fd: int, new_path: str) -> None:
        entry = self._get(fd)
        new_entry = self._get(new_fd)
        if self.read_only:
            self._refuse_change(entry, "rename")
        self._check_path(entry, old_path)
        self._check_path(new_entry, new_path)
        old_parent, old_name, old_owned = self._parent(entry.fd, old_path)
        try:
            try:
                new_parent, new_name, new_owned = self._parent(new_entry.fd, new_path)
            except WasiError:
                if not old_owned:
                    self._require_directory(entry)  # renameat resolves the old side first
                raise
            try:
                # renameat refuses a final '.' or '..' (EBUSY) once both parents resolve.
                for start, path, name in (
                    (entry.fd, old_path, old_name),
                    (new_entry.fd, new_path, new_name),
                ):
                    if name.rstrip("/") in (".", ".."):
                        if not old_owned:
                            self._require_directory(entry)
                        if not new_owned:
                            self._require_directory(new_entry)
                        if name == "..":
                            self._dotdot(start, path)
                        raise WasiError(ErrorCode.BUSY, f"cannot rename {path!r}")
                os.rename(old_name, new_name, src_dir_fd=old_parent, dst_dir_fd=new_parent)
            except OSError as exc:
                raise from_os_error(exc) from None
            finally:
                if new_owned:
                    os.close(new_parent)
        finally:
            if old_owned:
                os.close(old_parent)

    def symlink_at(self, fd: int, old_path: str, new_path: str) -> None:
        entry = self._get(fd)
        if self.read_only:
            self._refuse_change(entry, "symlink")
        if old_path.startswith("/"):
            self._require_directory(entry)
            # cap-std refuses absolute targets, so a guest cannot plant a link that some other
            # program would follow out of the directory.
            raise WasiError(ErrorCode.NOT_PERMITTED, f"absolute symlink target {old_path!r}")
        if "\0" in old_path:
            raise WasiError(ErrorCode.INVALID, "symlink target contains a NUL byte")
        _check_utf8(old_path)
        self._check_path(entry, new_path)
        parent, name, owned = self._parent(entry.fd, new_path)
        try:
            if name == "..":
                self._dotdot(entry.fd, new_path)
                raise WasiError(ErrorCode.EXIST, f"{new_path!r} exists")
            os.symlink(old_path, name, dir_fd=parent)
        except OSError as exc:
            raise from_os_error(exc) from None
        finally:
            if owned:
                os.close(parent)

    def readlink_at(self, fd: int, path: str) -> str:
        entry = self._get(fd)
        self._check_path(entry, path)
        if "/" not in path and path != "..":
            try:
                target = os.readlink(path, dir_fd=entry.fd)
            except OSError as exc:
                raise from_os_error(exc) from None
        else:
            host_fd = self._open_path(entry.fd, path, _O_PATH_NOFOLLOW)
            try:
                target = os.readlink("", dir_fd=host_fd)
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    # readlinkat(fd, "") on something that is not a symlink says ENOENT;
                    # readlink of a non-symlink by name says EINVAL.
                    exc = OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)
                raise from_os_error(exc) from None
            finally:
                os.close(host_fd)
        return target if target.isascii() else _check_utf8(target)

    def link_at(
        self, fd: int, old_path_flags: int, old_path: str, new_fd: int, new_path: str
    ) -> None:
        entry = self._get(fd)
        new_entry = self._get(new_fd)
        if self.read_only:
            self._refuse_change(entry, "link")
        self._check_path(entry, old_path)
        self._check_path(new_entry, new_path)
        old_last = old_path.rstrip("/").rpartition("/")[2]
        if int(old_path_flags) & _FOLLOW or old_path.endswith("/") or old_last in (".", ".."):
            # linkat would follow the final symlink (a trailing '/' follows too) wherever it
            # led; resolve it confined instead, then link the object that descriptor holds.
            target = self._open_path(entry.fd, old_path, _O_PATH)
            try:
                self._link_new(
                    new_entry.fd,
                    new_path,
                    lambda parent, name: _openat2.link_descriptor(target, parent, name),
                )
            finally:
                os.close(target)
            return
        old_parent, old_name, old_owned = self._parent(entry.fd, old_path)
        try:
            try:
                self._link_new(
                    new_entry.fd,
                    new_path,
                    lambda parent, name: os.link(
                        old_name,
                        name,
                        src_dir_fd=old_parent,
                        dst_dir_fd=parent,
                        follow_symlinks=False,
                    ),
                )
            except WasiError:
                # linkat looks the old path up before the new one, so its failure comes first.
                try:
                    os.stat(old_name, dir_fd=old_parent, follow_symlinks=False)
                except OSError as exc:
                    raise from_os_error(exc) from None
                raise
        finally:
            if old_owned:
                os.close(old_parent)

    def _link_new(self, dir_fd: int, path: str, link: Callable[[int, str], None]) -> None:
        """Resolve the new name of a hard link and call `link(parent fd, name)` there."""
        parent, name, owned = self._parent(dir_fd, path)
        try:
            if name == "..":
                self._dotdot(dir_fd, path)
                raise WasiError(ErrorCode.EXIST, f"{path!r} exists")
            link(parent, name)
        except OSError as exc:
            raise from_os_error(exc) from None
        finally:
            if owned:
                os.close(parent)
