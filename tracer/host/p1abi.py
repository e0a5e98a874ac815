"""Numbers and layouts of the wasi_snapshot_preview1 ABI (from the witx), and the code maps.

Only constants live here; `tracer.host.preview1` uses them.
"""

from __future__ import annotations

import struct

from tracer.backend import Advice, Clock, DescriptorType
from tracer.errors import ErrorCode

# errno values, in witx order.
ERRNO_NAMES: tuple[str, ...] = (
    "success", "2big", "acces", "addrinuse", "addrnotavail", "afnosupport", "again", "already",
    "badf", "badmsg", "busy", "canceled", "child", "connaborted", "connrefused", "connreset",
    "deadlk", "destaddrreq", "dom", "dquot", "exist", "fault", "fbig", "hostunreach", "idrm",
    "ilseq", "inprogress", "intr", "inval", "io", "isconn", "isdir", "loop", "mfile", "mlink",
    "msgsize", "multihop", "nametoolong", "netdown", "netreset", "netunreach", "nfile", "nobufs",
    "nodev", "noent", "noexec", "nolck", "nolink", "nomem", "nomsg", "noprotoopt", "nospc", "nosys",
    "notconn", "notdir", "notempty", "notrecoverable", "notsock", "notsup", "notty", "nxio",
    "overflow", "ownerdead", "perm", "pipe", "proto", "protonosupport", "prototype", "range",
    "rofs", "spipe", "srch", "stale", "timedout", "txtbsy", "xdev", "notcapable",
)  # fmt: skip
ERRNO: dict[str, int] = {name: i for i, name in enumerate(ERRNO_NAMES)}

SUCCESS = 0
E2BIG = ERRNO["2big"]
EBADF = ERRNO["badf"]
EFAULT = ERRNO["fault"]
EILSEQ = ERRNO["ilseq"]
EINVAL = ERRNO["inval"]
EISDIR = ERRNO["isdir"]
ENAMETOOLONG = ERRNO["nametoolong"]
ENOSYS = ERRNO["nosys"]
ENOTDIR = ERRNO["notdir"]
ENOTSOCK = ERRNO["notsock"]
ENOTSUP = ERRNO["notsup"]
EOVERFLOW = ERRNO["overflow"]
ESPIPE = ERRNO["spipe"]
EINTR = ERRNO["intr"]
EPERM = ERRNO["perm"]

# wasi:filesystem error-code -> preview 1 errno (as wasmtime maps them).
ERRNO_OF_CODE: dict[ErrorCode, int] = {
    ErrorCode.ACCESS: ERRNO["acces"],
    ErrorCode.WOULD_BLOCK: ERRNO["again"],
    ErrorCode.ALREADY: ERRNO["already"],
    ErrorCode.BAD_DESCRIPTOR: EBADF,
    ErrorCode.BUSY: ERRNO["busy"],
    ErrorCode.DEADLOCK: ERRNO["deadlk"],
    ErrorCode.QUOTA: ERRNO["dquot"],
    ErrorCode.EXIST: ERRNO["exist"],
    ErrorCode.FILE_TOO_LARGE: ERRNO["fbig"],
    ErrorCode.ILLEGAL_BYTE_SEQUENCE: EILSEQ,
    ErrorCode.IN_PROGRESS: ERRNO["inprogress"],
    ErrorCode.INTERRUPTED: ERRNO["intr"],
    ErrorCode.INVALID: EINVAL,
    ErrorCode.IO: ERRNO["io"],
    ErrorCode.IS_DIRECTORY: EISDIR,
    ErrorCode.LOOP: ERRNO["loop"],
    ErrorCode.TOO_MANY_LINKS: ERRNO["mlink"],
    ErrorCode.MESSAGE_SIZE: ERRNO["msgsize"],
    ErrorCode.NAME_TOO_LONG: ENAMETOOLONG,
    ErrorCode.NO_DEVICE: ERRNO["nodev"],
    ErrorCode.NO_ENTRY: ERRNO["noent"],
    ErrorCode.NO_LOCK: ERRNO["nolck"],
    ErrorCode.INSUFFICIENT_MEMORY: ERRNO["nomem"],
    ErrorCode.INSUFFICIENT_SPACE: ERRNO["nospc"],
    ErrorCode.NOT_DIRECTORY: ENOTDIR,
    ErrorCode.NOT_EMPTY: ERRNO["notempty"],
    ErrorCode.NOT_RECOVERABLE: ERRNO["notrecoverable"],
    ErrorCode.UNSUPPORTED: ENOTSUP,
    ErrorCode.NO_TTY: ERRNO["notty"],
    ErrorCode.NO_SUCH_DEVICE: ERRNO["nxio"],
    ErrorCode.OVERFLOW: EOVERFLOW,
    ErrorCode.NOT_PERMITTED: ERRNO["perm"],
    ErrorCode.PIPE: ERRNO["pipe"],
    ErrorCode.READ_ONLY: ERRNO["rofs"],
    ErrorCode.INVALID_SEEK: ESPIPE,
    ErrorCode.TEXT_FILE_BUSY: ERRNO["txtbsy"],
    ErrorCode.CROSS_DEVICE: ERRNO["xdev"],
}

# filetype
FILETYPE_UNKNOWN = 0
FILETYPE_CHARACTER_DEVICE = 2
FILETYPE_DIRECTORY = 3
FILETYPE_REGULAR_FILE = 4
FILETYPE_OF_TYPE: dict[str, int] = {
    DescriptorType.UNKNOWN: 0,
    DescriptorType.BLOCK_DEVICE: 1,
    DescriptorType.CHARACTER_DEVICE: 2,
    DescriptorType.DIRECTORY: 3,
    DescriptorType.REGULAR_FILE: 4,
    DescriptorType.SOCKET: 0,
    DescriptorType.SYMBOLIC_LINK: 7,
    DescriptorType.FIFO: 0,
}

# fdflags
FDFLAGS_APPEND = 1
FDFLAGS_DSYNC = 2
FDFLAGS_NONBLOCK = 4
FDFLAGS_RSYNC = 8
FDFLAGS_SYNC = 16
FDFLAGS_ALL = 0x1F

# fstflags
FSTFLAGS_ATIM = 1
FSTFLAGS_ATIM_NOW = 2
FSTFLAGS_MTIM = 4
FSTFLAGS_MTIM_NOW = 8
FSTFLAGS_ALL = 0xF

# lookupflags / oflags share their bits with wasi:filesystem path-flags / open-flags.
OFLAGS_ALL = 0xF
LOOKUP_SYMLINK_FOLLOW = 1

# whence
WHENCE_SET = 0
WHENCE_CUR = 1
WHENCE_END = 2

ADVICE: tuple[Advice, ...] = (
    Advice.NORMAL,
    Advice.SEQUENTIAL,
    Advice.RANDOM,
    Advice.WILL_NEED,
    Advice.DONT_NEED,
    Advice.NO_REUSE,
)
CLOCKS: tuple[Clock, ...] = (
    Clock.REALTIME,
    Clock.MONOTONIC,
    Clock.PROCESS_CPUTIME,
    Clock.THREAD_CPUTIME,
)

# rights
RIGHT_FD_DATASYNC = 1 << 0
RIGHT_FD_READ = 1 << 1
RIGHT_FD_SEEK = 1 << 2
RIGHT_FD_FDSTAT_SET_FLAGS = 1 << 3
RIGHT_FD_SYNC = 1 << 4
RIGHT_FD_TELL = 1 << 5
RIGHT_FD_WRITE = 1 << 6
RIGHT_FD_ADVISE = 1 << 7
RIGHT_FD_ALLOCATE = 1 << 8
RIGHT_FD_READDIR = 1 << 14
RIGHT_PATH_FILESTAT_SET_SIZE = 1 << 19
RIGHT_FD_FILESTAT_SET_SIZE = 1 << 22
RIGHT_POLL_FD_READWRITE = 1 << 27
RIGHTS_ALL = (1 << 30) - 1
RIGHTS_READING = RIGHT_FD_READ | RIGHT_FD_READDIR
# What wasmtime reports for preopened directories, and what it leaves out of opened ones.
RIGHTS_PREOPEN_BASE = 0x07B7FE00
RIGHTS_PREOPEN_INHERITING = 0x0FF7FFFF
RIGHTS_NOT_ON_DIRECTORIES = (
    RIGHT_FD_SEEK | RIGHT_FD_FILESTAT_SET_SIZE | RIGHT_PATH_FILESTAT_SET_SIZE | RIGHT_FD_WRITE
)

# event types and subscription flags
EVENTTYPE_CLOCK = 0
EVENTTYPE_FD_READ = 1
EVENTTYPE_FD_WRITE = 2
SUBCLOCKFLAGS_ABSTIME = 1
EVENTRWFLAGS_HANGUP = 1

# Layouts (little-endian, witx alignment).
IOVEC = struct.Struct("<II")  # buf, buf_len
FDSTAT = struct.Struct("<BxHxxxxQQ")  # filetype, flags, rights_base, rights_inheriting
FILESTAT = struct.Struct("<QQBxxxxxxxQQQQQ")  # dev, ino, filetype, nlink, size, atim, mtim, ctim
PRESTAT = struct.Struct("<BxxxI")  # tag (0 = dir), name length
DIRENT = struct.Struct("<QQIBxxx")  # d_next, d_ino, d_namlen, d_type
SUBSCRIPTION = struct.Struct(
    "<QB7xIxxxxQQH6x"
)  # userdata, tag, clock id / fd, timeout, precision, flags
EVENT = struct.Struct("<QHBxxxxxQH6x")  # userdata, error, type, nbytes, flags
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")
U32_PAIR = struct.Struct("<II")
