"""WASI error codes, the one exception type backends raise, and the mapping from OS errors.

Backends speak wasi:filesystem's `error-code`; the host layers turn a code into a preview 1
errno (or a preview 2 `error-code` variant). OS errors are mapped to codes here and only here.
"""

from __future__ import annotations

import errno as _errno
from enum import StrEnum


class ErrorCode(StrEnum):
    """wasi:filesystem/types `error-code`, spelled as in WIT."""

    ACCESS = "access"
    WOULD_BLOCK = "would-block"
    ALREADY = "already"
    BAD_DESCRIPTOR = "bad-descriptor"
    BUSY = "busy"
    DEADLOCK = "deadlock"
    QUOTA = "quota"
    EXIST = "exist"
    FILE_TOO_LARGE = "file-too-large"
    ILLEGAL_BYTE_SEQUENCE = "illegal-byte-sequence"
    IN_PROGRESS = "in-progress"
    INTERRUPTED = "interrupted"
    INVALID = "invalid"
    IO = "io"
    IS_DIRECTORY = "is-directory"
    LOOP = "loop"
    TOO_MANY_LINKS = "too-many-links"
    MESSAGE_SIZE = "message-size"
    NAME_TOO_LONG = "name-too-long"
    NO_DEVICE = "no-device"
    NO_ENTRY = "no-entry"
    NO_LOCK = "no-lock"
    INSUFFICIENT_MEMORY = "insufficient-memory"
    INSUFFICIENT_SPACE = "insufficient-space"
    NOT_DIRECTORY = "not-directory"
    NOT_EMPTY = "not-empty"
    NOT_RECOVERABLE = "not-recoverable"
    UNSUPPORTED = "unsupported"
    NO_TTY = "no-tty"
    NO_SUCH_DEVICE = "no-such-device"
    OVERFLOW = "overflow"
    NOT_PERMITTED = "not-permitted"
    PIPE = "pipe"
    READ_ONLY = "read-only"
    INVALID_SEEK = "invalid-seek"
    TEXT_FILE_BUSY = "text-file-busy"
    CROSS_DEVICE = "cross-device"


class WasiError(Exception):
    """A backend operation failed with a WASI error code (an expected outcome, not a bug)."""

    __slots__ = ("code",)

    def __init__(self, code: ErrorCode, detail: str = "") -> None:
        super().__init__(f"{code.value}: {detail}" if detail else code.value)
        self.code = code


# OS errno -> WASI code. Every code a host filesystem call can produce on Linux is listed;
# anything else becomes `io` (see `from_os_error`).
_OS_ERRNO_TO_CODE: dict[int, ErrorCode] = {
    _errno.EACCES: ErrorCode.ACCESS,
    _errno.EAGAIN: ErrorCode.WOULD_BLOCK,
    _errno.EALREADY: ErrorCode.ALREADY,
    _errno.EBADF: ErrorCode.BAD_DESCRIPTOR,
    _errno.EBUSY: ErrorCode.BUSY,
    _errno.EDEADLK: ErrorCode.DEADLOCK,
    _errno.EDQUOT: ErrorCode.QUOTA,
    _errno.EEXIST: ErrorCode.EXIST,
    _errno.EFBIG: ErrorCode.FILE_TOO_LARGE,
    _errno.EILSEQ: ErrorCode.ILLEGAL_BYTE_SEQUENCE,
    _errno.EINPROGRESS: ErrorCode.IN_PROGRESS,
    _errno.EINTR: ErrorCode.INTERRUPTED,
    _errno.EINVAL: ErrorCode.INVALID,
    _errno.EIO: ErrorCode.IO,
    _errno.EISDIR: ErrorCode.IS_DIRECTORY,
    _errno.ELOOP: ErrorCode.LOOP,
    _errno.EMLINK: ErrorCode.TOO_MANY_LINKS,
    _errno.EMSGSIZE: ErrorCode.MESSAGE_SIZE,
    _errno.ENAMETOOLONG: ErrorCode.NAME_TOO_LONG,
    _errno.ENODEV: ErrorCode.NO_DEVICE,
    _errno.ENOENT: ErrorCode.NO_ENTRY,
    _errno.ENOLCK: ErrorCode.NO_LOCK,
    _errno.ENOMEM: ErrorCode.INSUFFICIENT_MEMORY,
    _errno.ENOSPC: ErrorCode.INSUFFICIENT_SPACE,
    _errno.ENOTDIR: ErrorCode.NOT_DIRECTORY,
    _errno.ENOTEMPTY: ErrorCode.NOT_EMPTY,
    _errno.ENOTRECOVERABLE: ErrorCode.NOT_RECOVERABLE,
    _errno.ENOTSUP: ErrorCode.UNSUPPORTED,
    _errno.ENOTTY: ErrorCode.NO_TTY,
    _errno.ENXIO: ErrorCode.NO_SUCH_DEVICE,
    _errno.EOVERFLOW: ErrorCode.OVERFLOW,
    _errno.EPERM: ErrorCode.NOT_PERMITTED,
    _errno.EPIPE: ErrorCode.PIPE,
    _errno.EROFS: ErrorCode.READ_ONLY,
    _errno.ESPIPE: ErrorCode.INVALID_SEEK,
    _errno.ETXTBSY: ErrorCode.TEXT_FILE_BUSY,
    _errno.EXDEV: ErrorCode.CROSS_DEVICE,
}


def code_for_os_errno(os_errno: int | None) -> ErrorCode:
    """The WASI code for an OS errno; unknown or missing errnos are `io`."""
    if os_errno is None:
        return ErrorCode.IO
    return _OS_ERRNO_TO_CODE.get(os_errno, ErrorCode.IO)


def from_os_error(exc: OSError) -> WasiError:
    """Turn an OSError from a host call into the WasiError a backend raises."""
    return WasiError(code_for_os_errno(exc.errno), exc.strerror or "")
