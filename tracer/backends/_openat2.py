"""Open a path beneath a directory descriptor without ever leaving it, plus `utimensat`.

`HostDirBackend` resolves every guest path through `open_beneath`, which has two strategies
with the same meaning:

* `open_beneath_kernel` -- Linux openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, so
  the kernel walks the path atomically and refuses `..`, absolute paths and symlinks that would
  leave the starting directory (it reports EXDEV, retried on EAGAIN after a concurrent rename).
* `open_beneath_manual` -- for kernels without openat2 (ENOSYS, or a seccomp filter that says
  EPERM): one component at a time with O_PATH|O_NOFOLLOW relative to descriptors we hold,
  expanding symlinks ourselves from readlinkat on the descriptor we opened, with a stack of held
  directories so `..` can never climb above the start (the approach cap-std takes).

Either way an escape is reported as EPERM ("path escapes its directory"), which
`tracer.errors.from_os_error` maps to `not-permitted`; every other failure is the OS error.

Python's `os` module has neither openat2 nor a `utimensat` that can leave one timestamp alone
(UTIME_OMIT), so both are called through ctypes here.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import stat
from collections.abc import Callable
from typing import TypeAlias

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
_RESOLVE = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2

# Linux's limit on symlinks followed in one lookup (MAXSYMLINKS); the manual walk keeps it too.
MAX_SYMLINKS = 40
# openat2 says EAGAIN when a rename raced with a `..` step; after this many tries, walk manually.
_EAGAIN_RETRIES = 32

# openat2 got one number on every architecture using the unified table (5.6+); alpha is offset.
_SYS_OPENAT2 = {"alpha": 547}.get(platform.machine(), 437)

OpenBeneath: TypeAlias = Callable[[int, str, int, int], int]
# (seconds, nanoseconds) as the kernel's struct timespec; UTIME_NOW / UTIME_OMIT in nanoseconds.
Timespec: TypeAlias = tuple[int, int]


class _OpenHow(ctypes.Structure):
    _fields_ = (
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    )


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


_TimespecPair = _Timespec * 2

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = getattr(_libc, "syscall", None)
if _syscall is not None:
    _syscall.restype = ctypes.c_long
    _syscall.argtypes = (
        ctypes.c_long,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_void_p,
        ctypes.c_size_t,
    )
_utimensat = _libc.utimensat
_utimensat.restype = ctypes.c_int
_utimensat.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int)
_futimens = _libc.futimens
_futimens.restype = ctypes.c_int
_futimens.argtypes = (ctypes.c_int, ctypes.c_void_p)
_linkat = _libc.linkat
_linkat.restype = ctypes.c_int
_linkat.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int)

# open_how structs are read-only once built, so one per (flags, mode) serves every call and thread.
_HOW_SIZE = ctypes.sizeof(_OpenHow)
_hows: dict[tuple[int, int], tuple[_OpenHow, int]] = {}


def _how_address(flags: int, mode: int) -> int:
    entry = _hows.get((flags, mode))
    if entry is None:
        how = _OpenHow(flags, mode, _RESOLVE)
        entry = _hows[(flags, mode)] = (how, ctypes.addressof(how))
    return entry[1]


def escape_error(path: str) -> PermissionError:
    """The error both strategies raise for a path that would leave its directory."""
    return PermissionError(errno.EPERM, "path escapes its directory", path)


def syscall_openat2(dirfd: int, path: bytes, flags: int, mode: int) -> int:
    """The bare openat2 system call with our resolve flags; raises OSError."""
    if _syscall is None:
        raise OSError(errno.ENOSYS, "no syscall() in this C library")
    entry = _hows.get((flags, mode))
    address = entry[1] if entry is not None else _how_address(flags, mode)
    fd: int = _syscall(_SYS_OPENAT2, dirfd, path, address, _HOW_SIZE)
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return fd


def open_beneath_kernel(dirfd: int, path: str, flags: int, mode: int = 0) -> int:
    """Open `path` beneath `dirfd` with openat2; see the module docstring."""
    encoded = os.fsencode(path)
    if b"\0" in encoded:
        raise OSError(errno.EINVAL, "path contains a NUL byte", path)
    flags |= os.O_CLOEXEC
    if not flags & os.O_CREAT:
        mode = 0  # openat2 refuses a mode it would not use
    for _ in range(_EAGAIN_RETRIES):
        try:
            return syscall_openat2(dirfd, encoded, flags, mode)
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                raise escape_error(path) from None
            if exc.errno == errno.EAGAIN:
                continue
            if exc.errno == errno.ENOSYS:
                break
            exc.filename = path
            raise
    return open_beneath_manual(dirfd, path, flags, mode)


def _components(path: str) -> list[str]:
    """Path components in reverse (a stack to pop from), '.' and empty ones dropped.

    A path ending in '.' or '..' names a directory, so it gets a final '.': the walk then
    treats its last name as an intermediate directory and opens '.' inside it. A trailing
    '/' does the same with the marker '' instead, because O_CREAT treats it differently.
    """
    parts = path.split("/")
    names = [p for p in parts if p and p != "."]
    last = path.rstrip("/").rpartition("/")[2]
    if last in ("", ".", ".."):
        names.append(".")
    elif path.endswith("/"):
        names.append(_TRAILING_SLASH)
    names.reverse()
    return names


_TRAILING_SLASH = ""


def open_beneath_manual(dirfd: int, path: str, flags: int, mode: int = 0) -> int:
    """Open `path` beneath `dirfd` without openat2, resolving each component ourselves."""
    if not path:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
    if "\0" in path:
        raise OSError(errno.EINVAL, "path contains a NUL byte", path)
    if path.startswith("/"):
        raise escape_error(path)
    flags |= os.O_CLOEXEC
    exclusive_create = flags & (os.O_CREAT | os.O_EXCL) == os.O_CREAT | os.O_EXCL
    follow_last = not flags & os.O_NOFOLLOW and not exclusive_create
    todo = _components(path)
    held: list[int] = []  # directories descended into, innermost last; `..` pops one
    links = 0
    try:
        while True:
            here = held[-1] if held else dirfd
            name = todo.pop()
            if name == "..":
                if not held:
                    _require_directory(dirfd, path)
                    raise escape_error(path)
                os.close(held.pop())
                continue
            if name == "." or name == _TRAILING_SLASH:
                if todo:
                    continue
                # '.' is never a symlink, so nothing here can lead outside.
                return os.open(".", flags, mode, dir_fd=here)
            if todo:
                if flags & os.O_CREAT and todo == [_TRAILING_SLASH]:
                    # Linux refuses to create 'name/' before it even looks the name up.
                    if not held:
                        _require_directory(dirfd, path)
                    raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
                target = _step_into(name, here, held)
                if target is None:
                    continue
            else:
                opened, target = _open_last(name, here, flags, mode, follow_last)
                if opened is not None:
                    return opened
                if target is None:
                    # The name stopped being a symlink between our two calls: look again.
                    todo.append(name)
                    target = ""
            links += 1
            if links > MAX_SYMLINKS:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
            if target:
                if target.startswith("/"):
                    raise escape_error(path)
                todo.extend(_components(target))
    finally:
        for fd in held:
            os.close(fd)


def _require_directory(fd: int, path: str) -> None:
    """ENOTDIR if `fd` is not a directory: where we answer before the kernel would look."""
    if not stat.S_ISDIR(os.fstat(fd).st_mode):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)


def _step_into(name: str, here: int, held: list[int]) -> str | None:
    """Descend into directory `name`, pushing it on `held`; a symlink's target is returned."""
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=here)
    try:
        kind = stat.S_IFMT(os.fstat(fd).st_mode)
        if kind == stat.S_IFDIR:
            held.append(fd)
            fd = -1
            return None
        if kind == stat.S_IFLNK:
            # Read the link we opened, not the name again: the name may have changed since.
            return os.readlink("", dir_fd=fd)
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), name)
    finally:
        if fd >= 0:
            os.close(fd)


def _open_last(
    name: str, here: int, flags: int, mode: int, follow: bool
) -> tuple[int | None, str | None]:
    """Open the final component: (descriptor, None), or (None, symlink target) to follow.

    (None, None) means the name was a symlink and then was not; the caller looks again.
    """
    if flags & os.O_PATH:
        # O_PATH|O_NOFOLLOW opens a symlink itself, so look at what we got.
        fd = os.open(name, (flags & ~os.O_DIRECTORY) | os.O_NOFOLLOW, dir_fd=here)
        keep = False
        try:
            kind = stat.S_IFMT(os.fstat(fd).st_mode)
            if kind == stat.S_IFLNK and follow:
                return None, os.readlink("", dir_fd=fd)
            if flags & os.O_DIRECTORY and kind != stat.S_IFDIR:
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), name)
            keep = True
            return fd, None
        finally:
            if not keep:
                os.close(fd)
    try:
        return os.open(name, flags | os.O_NOFOLLOW, mode, dir_fd=here), None
    except OSError as exc:
        # O_NOFOLLOW on a symlink: ELOOP, or ENOTDIR when O_DIRECTORY was asked for too.
        if not follow or exc.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        try:
            return None, os.readlink(name, dir_fd=here)
        except OSError as again:
            if again.errno == errno.EINVAL and exc.errno == errno.ELOOP:
                return None, None
            raise exc from None


_kernel_has_openat2: bool | None = None


def choose(dirfd: int) -> OpenBeneath:
    """The strategy this kernel supports, probed once per process with a real call."""
    global _kernel_has_openat2
    if _kernel_has_openat2 is None:
        try:
            os.close(syscall_openat2(dirfd, b".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, 0))
            _kernel_has_openat2 = True
        except OSError as exc:
            if exc.errno not in (errno.ENOSYS, errno.EPERM):
                raise
            _kernel_has_openat2 = False
    return open_beneath_kernel if _kernel_has_openat2 else open_beneath_manual


def reset_probe() -> None:
    """Forget the probe result (tests that simulate a kernel without openat2 use this)."""
    global _kernel_has_openat2
    _kernel_has_openat2 = None


def _raise_errno() -> None:
    code = ctypes.get_errno()
    raise OSError(code, os.strerror(code))


def utimensat(dirfd: int, path: bytes, atime: Timespec, mtime: Timespec, flags: int) -> None:
    """utimensat(2); a timespec's nanoseconds may be UTIME_NOW or UTIME_OMIT. Raises OSError."""
    times = _TimespecPair(_Timespec(*atime), _Timespec(*mtime))
    if _utimensat(dirfd, path, ctypes.addressof(times), flags) != 0:
        _raise_errno()


def futimens(fd: int, atime: Timespec, mtime: Timespec) -> None:
    """futimens(3), with UTIME_NOW / UTIME_OMIT as for `utimensat`. Raises OSError."""
    times = _TimespecPair(_Timespec(*atime), _Timespec(*mtime))
    if _futimens(fd, ctypes.addressof(times)) != 0:
        _raise_errno()


def link_descriptor(fd: int, new_dirfd: int, new_name: str) -> None:
    """Hard-link the object an O_PATH descriptor refers to as `new_name` in `new_dirfd`.

    linkat through /proc/self/fd works for any user; where procfs is missing, linkat with
    AT_EMPTY_PATH (which needs CAP_DAC_READ_SEARCH). Raises OSError.
    """
    try:
        os.link(f"/proc/self/fd/{fd}", new_name, dst_dir_fd=new_dirfd, follow_symlinks=True)
        return
    except FileNotFoundError:
        if os.path.isdir("/proc/self/fd"):
            raise
    if _linkat(fd, b"", new_dirfd, os.fsencode(new_name), AT_EMPTY_PATH) != 0:
        _raise_errno()
