"""The trace file format, version 1: constants, framing, and how each operation's values encode.

This module is the serializer's vocabulary, shared by `tracer.trace.writer` and
`tracer.trace.reader`; it does no file I/O. `docs/trace-format.md` is the prose description and
`wit/trace.wit` mirrors the records; keep the three in step.

A trace is a msgpack stream: a header frame, chunk frames of events, a footer frame, and a
fixed-size trailer that points at the footer. Every frame carries a crc32 of its body so damage is
detected instead of being decoded into wrong values.

How an operation's arguments and result encode is derived from the annotations of
`tracer.backend.Backend`, so the format stays generic over `tracer.operations.OPERATIONS`: a new
operation whose parameters use the existing types needs no change here, and one that introduces a
new type fails at import with a message naming it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Any, Literal, NamedTuple, get_type_hints

from tracer.backend import Backend, DescriptorStat, DirectoryEntry, NewTimestamp
from tracer.errors import ErrorCode
from tracer.operations import OPERATIONS, Operation

FORMAT_NAME = "wasitrace-trace"
FORMAT_VERSION = 1

# -- framing ---------------------------------------------------------------------------------
# Header frame: fixarray(4) [FORMAT_NAME, version, body: bin32, crc32(body): uint32].
# Other frames: fixarray(3) [kind: fixint, body: bin32, crc32(body): uint32].
# Fixed msgpack types (bin32, uint32) make frames easy to locate and check without a full
# unpacker, while the file stays a plain msgpack stream any msgpack tool can list.
HEADER_PREFIX = b"\x94\xaf" + FORMAT_NAME.encode("ascii")
KIND_CHUNK = 1
KIND_FOOTER = 2
BIN32 = 0xC6
UINT32 = 0xCE
FRAME_HEAD_SIZE = 7  # fixarray, kind, bin32 marker, 4-byte length
FRAME_TAIL_SIZE = 5  # uint32 marker, 4-byte crc
# Trailer: bin8 of 12 bytes = TRAILER_MAGIC + the footer frame's offset as a big-endian u64.
TRAILER_MAGIC = b"wtrF"
TRAILER = struct.Struct(">2s4sQ")
TRAILER_HEAD = bytes((0xC4, 12))
TRAILER_SIZE = TRAILER.size

# -- chunking --------------------------------------------------------------------------------
CHUNK_EVENTS = 256  # a chunk is written after this many events...
CHUNK_BULK_BYTES = 64 * 1024  # ...or once this much bulk data is pending, and at close.
INLINE_BYTES = 32  # byte strings shorter than this are stored inline, longer ones as blobs.
EVENT_FIELDS = 4  # an event is flag, arguments, outcome, duration (see docs/trace-format.md)


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def frame(kind: int, body: bytes) -> bytes:
    """One chunk or footer frame, ready for a single write()."""
    return b"".join(
        (
            bytes((0x93, kind, BIN32)),
            len(body).to_bytes(4, "big"),
            body,
            bytes((UINT32,)),
            crc32(body).to_bytes(4, "big"),
        )
    )


def header_frame(body: bytes) -> bytes:
    return b"".join(
        (
            HEADER_PREFIX,
            bytes((FORMAT_VERSION, BIN32)),
            len(body).to_bytes(4, "big"),
            body,
            bytes((UINT32,)),
            crc32(body).to_bytes(4, "big"),
        )
    )


def trailer(footer_offset: int) -> bytes:
    return TRAILER.pack(TRAILER_HEAD, TRAILER_MAGIC, footer_offset)


class TraceError(Exception):
    """A file is not a trace, is a newer version, or is damaged; the message is one sentence."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "The trace cannot be read."


# -- error codes -----------------------------------------------------------------------------
# The code of an error in a trace is its position in wasi:filesystem's `error-code` enum (WIT
# order). The list is frozen here rather than taken from `ErrorCode` so that reordering that
# enum can never silently change what old traces mean; new codes are only ever appended.
_WIT_ERROR_CODE_ORDER = (
    "access",
    "would-block",
    "already",
    "bad-descriptor",
    "busy",
    "deadlock",
    "quota",
    "exist",
    "file-too-large",
    "illegal-byte-sequence",
    "in-progress",
    "interrupted",
    "invalid",
    "io",
    "is-directory",
    "loop",
    "too-many-links",
    "message-size",
    "name-too-long",
    "no-device",
    "no-entry",
    "no-lock",
    "insufficient-memory",
    "insufficient-space",
    "not-directory",
    "not-empty",
    "not-recoverable",
    "unsupported",
    "no-tty",
    "no-such-device",
    "overflow",
    "not-permitted",
    "pipe",
    "read-only",
    "invalid-seek",
    "text-file-busy",
    "cross-device",
)
ERROR_CODES: tuple[ErrorCode, ...] = tuple(ErrorCode(name) for name in _WIT_ERROR_CODE_ORDER)
ERROR_INDEX: dict[ErrorCode, int] = {code: i for i, code in enumerate(ERROR_CODES)}


# -- value kinds -----------------------------------------------------------------------------
class Kind(IntEnum):
    """How one argument or result is stored in an event."""

    NONE = 0  # no value (a result of None is not stored at all)
    INT = 1  # msgpack int, as is
    TIMESTAMP = 2  # new-timestamp: int, "now", or nil (no-change), as is
    STR = 3  # interned string id
    ENUM = 4  # a StrEnum's value, interned like a string
    BYTES = 5  # bin inline if short, else a blob id
    STAT = 6  # interned descriptor-stat id
    ENTRIES = 7  # array of [type string id, name string id, inode] triples, flattened
    STRINGS = 8  # array of str, as is (arguments)
    PAIRS = 9  # array of 2-arrays, as is (environment, preopens)


@dataclass(frozen=True, slots=True)
class ValueSpec:
    name: str
    kind: Kind
    enum: type[StrEnum] | None = None


@dataclass(frozen=True, slots=True)
class OpSpec:
    """An operation as the format sees it: its code and how its values encode."""

    op: Operation
    code: int
    params: tuple[ValueSpec, ...]
    result: ValueSpec


def _value_spec(name: str, annotation: Any, where: str) -> ValueSpec:
    if annotation is int:
        return ValueSpec(name, Kind.INT)
    if annotation is str:
        return ValueSpec(name, Kind.STR)
    if annotation is bytes:
        return ValueSpec(name, Kind.BYTES)
    if annotation is type(None) or annotation is None:
        return ValueSpec(name, Kind.NONE)
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        return ValueSpec(name, Kind.ENUM, annotation)
    if annotation == NewTimestamp:
        return ValueSpec(name, Kind.TIMESTAMP)
    if annotation is DescriptorStat:
        return ValueSpec(name, Kind.STAT)
    if annotation == list[DirectoryEntry]:
        return ValueSpec(name, Kind.ENTRIES)
    if annotation == list[str]:
        return ValueSpec(name, Kind.STRINGS)
    if annotation in (list[tuple[str, str]], list[tuple[int, str]]):
        return ValueSpec(name, Kind.PAIRS)
    raise TypeError(
        f"The trace format has no encoding for {annotation!r} ({where}); "
        "add one to tracer/trace/format.py and docs/trace-format.md."
    )


def _op_spec(code: int, op: Operation) -> OpSpec:
    hints = get_type_hints(getattr(Backend, op.name))
    params = tuple(_value_spec(p, hints[p], f"{op.name}({p})") for p in op.params)
    result = _value_spec("result", hints["return"], f"{op.name} result")
    return OpSpec(op, code, params, result)


OP_SPECS: tuple[OpSpec, ...] = tuple(_op_spec(i, op) for i, op in enumerate(OPERATIONS))


# -- header and footer -----------------------------------------------------------------------
Abi = Literal["preview1", "preview2"]


@dataclass(frozen=True, slots=True)
class GuestInfo:
    name: str  # file name of the .wasm
    size: int
    sha256: str  # hex
    abi: Abi
    path: str  # as given on the command line


@dataclass(frozen=True, slots=True)
class Preopen:
    guest_path: str
    backend: str  # backend kind, e.g. "memory" or "host-dir"
    source: str  # host path, or "memory"


@dataclass(frozen=True, slots=True)
class TraceHeader:
    guest: GuestInfo
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    preopens: tuple[Preopen, ...]
    wasmtime_version: str
    wasitrace_version: str
    recorded_at: str  # ISO 8601, UTC
    extra: Mapping[str, Any] = field(default_factory=dict)
    # Operation names by code, as known to the recording wasitrace.
    operations: tuple[str, ...] = tuple(op.name for op in OPERATIONS)
    format_version: int = FORMAT_VERSION

    @classmethod
    def for_guest(
        cls,
        guest_path: str | Path,
        abi: Abi,
        argv: Sequence[str],
        env: Sequence[tuple[str, str]] = (),
        preopens: Sequence[Preopen] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> TraceHeader:
        """A header for a run starting now: hashes the guest and looks up the versions."""
        path = Path(guest_path)
        digest = hashlib.sha256()
        size = 0
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
                size += len(block)
        return cls(
            guest=GuestInfo(path.name, size, digest.hexdigest(), abi, str(guest_path)),
            argv=tuple(argv),
            env=tuple(env),
            preopens=tuple(preopens),
            wasmtime_version=_version("wasmtime"),
            wasitrace_version=_version("wasitrace"),
            recorded_at=datetime.now(UTC).isoformat(timespec="seconds"),
            extra=dict(extra or {}),
        )

    def to_wire(self) -> dict[str, Any]:
        g = self.guest
        return {
            "guest": {
                "name": g.name,
                "size": g.size,
                "sha256": g.sha256,
                "abi": g.abi,
                "path": g.path,
            },
            "argv": list(self.argv),
            "env": [list(pair) for pair in self.env],
            "preopens": [
                {"guest_path": p.guest_path, "backend": p.backend, "source": p.source}
                for p in self.preopens
            ],
            "wasmtime_version": self.wasmtime_version,
            "wasitrace_version": self.wasitrace_version,
            "recorded_at": self.recorded_at,
            "operations": list(self.operations),
            "extra": dict(self.extra),
        }

    @classmethod
    def from_wire(cls, wire: Any, version: int) -> TraceHeader:
        """Raises KeyError/TypeError/ValueError on a malformed header (the reader reports it)."""
        g = wire["guest"]
        abi = g["abi"]
        if abi not in ("preview1", "preview2"):
            raise ValueError(f"unknown abi {abi!r}")
        return cls(
            guest=GuestInfo(str(g["name"]), int(g["size"]), str(g["sha256"]), abi, str(g["path"])),
            argv=tuple(str(a) for a in wire["argv"]),
            env=tuple((str(k), str(v)) for k, v in wire["env"]),
            preopens=tuple(
                Preopen(str(p["guest_path"]), str(p["backend"]), str(p["source"]))
                for p in wire["preopens"]
            ),
            wasmtime_version=str(wire["wasmtime_version"]),
            wasitrace_version=str(wire["wasitrace_version"]),
            recorded_at=str(wire["recorded_at"]),
            extra=dict(wire.get("extra") or {}),
            operations=tuple(str(name) for name in wire["operations"]),
            format_version=version,
        )


@functools.cache  # a millisecond a lookup, and every recording's header asks for two
def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class IndexEntry(NamedTuple):
    """Where a chunk starts, and the first event / string / blob / stat id it holds or defines."""

    offset: int
    first_seq: int
    first_string: int
    first_blob: int
    first_stat: int


INDEX_FIELDS = 5
STAT_FIELDS = 8  # device, inode, type, link count, size, 3 timestamps
# A stat's device, inode and timestamps are unsigned 64-bit; a delta between two of them below
# msgpack's smallest int is stored plus 2**64, and a decoded value of 2**64 or more is taken
# minus 2**64 (docs/trace-format.md).
INT64_MIN = -(1 << 63)
U64_WRAP = 1 << 64


def wrap_delta(delta: int) -> int:
    """A stat field's delta as stored: plus 2**64 if below msgpack's smallest int."""
    return delta + U64_WRAP if delta < INT64_MIN else delta


def unwrap(value: int) -> int:
    """A stat field decoded from a base and a delta that may have been stored wrapped."""
    return value - U64_WRAP if value >= U64_WRAP else value


@dataclass(frozen=True, slots=True)
class Footer:
    exit_status: int | None
    total_events: int
    counts: Mapping[str, int]  # calls per operation name (operations never called are left out)
    errors: Mapping[str, int]  # calls that failed, per operation name
    index: tuple[IndexEntry, ...]
    trap: str | None = None  # the trap message, when the guest trapped
