"""Reading a trace: `open_trace(path)` gives a `Trace` with lazy iteration and random access.

Memory stays bounded whatever the trace's length: the reader keeps the chunk index, the strings
it has resolved, and a few decoded chunks; events are decoded a chunk at a time when asked for.
With a footer the index comes from it; without one (a recording that was killed) the reader scans
the chunks once, checking each, and stops at the first incomplete or damaged one.

Every way a file can be wrong ends in `TraceError` with one sentence: at open for a file that is not
a trace, a newer version or a damaged header; while reading for a chunk found damaged later.
"""

from __future__ import annotations

import os
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, overload

import msgpack

from tracer.backend import DescriptorStat, DescriptorType, DirectoryEntry
from tracer.errors import ErrorCode
from tracer.operations import OPERATIONS, Operation
from tracer.trace.format import (
    BIN32,
    ERROR_CODES,
    EVENT_FIELDS,
    FORMAT_NAME,
    FORMAT_VERSION,
    FRAME_TAIL_SIZE,
    HEADER_PREFIX,
    INDEX_FIELDS,
    KIND_CHUNK,
    KIND_FOOTER,
    OP_SPECS,
    STAT_FIELDS,
    TRAILER,
    TRAILER_HEAD,
    TRAILER_MAGIC,
    TRAILER_SIZE,
    UINT32,
    Footer,
    IndexEntry,
    Kind,
    TraceError,
    TraceHeader,
    crc32,
    unwrap,
)

CHUNK_CACHE_SIZE = 8
# Errors that decoding damaged-but-checksummed or hand-made bytes can raise; all become TraceError.
_DECODE_ERRORS = (
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    OverflowError,
    msgpack.UnpackException,
)


class Event(NamedTuple):
    """One recorded call. `result` is None when the call failed (then `error` is its code)."""

    seq: int
    op: Operation
    args: tuple[Any, ...]
    result: Any
    error: ErrorCode | None
    duration_ns: int

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def arguments(self) -> dict[str, Any]:
        """The arguments by parameter name."""
        return dict(zip(self.op.params, self.args, strict=True))


class _Chunk:
    """One decoded chunk body: its definitions, and its events (decoded on first use)."""

    __slots__ = (
        "blobs",
        "events",
        "events_packed",
        "first_seq",
        "n_events",
        "stat_defs",
        "stats",
        "strings",
    )

    def __init__(self, body: Any) -> None:
        (
            self.first_seq,
            self.n_events,
            _,
            self.strings,
            _,
            self.blobs,
            _,
            self.stat_defs,
            self.events_packed,
        ) = body
        self.stats: list[DescriptorStat] | None = None
        self.events: list[Event] | None = None


# Per operation: (operation, number of arguments, (position, decoder) of each argument that is not
# a plain int, result decoder or None when the operation returns nothing).
_Decoder = tuple[Operation, int, tuple[tuple[int, Any], ...], Any]


class _Frame(NamedTuple):
    kind: int
    body: bytes
    end: int


class _Bad(Exception):
    """Internal: a frame could not be read; `incomplete` when the file simply ends inside it."""

    def __init__(self, what: str, incomplete: bool = False, kind: int = KIND_CHUNK) -> None:
        super().__init__(what)
        self.what = what
        self.incomplete = incomplete
        self.kind = kind


def open_trace(path: str | Path) -> Trace:
    """Open a trace for reading; raises `TraceError` if it is not one or cannot be read."""
    return Trace(path)


class Trace:
    """A trace file opened for reading. Also a context manager that closes the file."""

    header: TraceHeader
    footer: Footer | None
    damage: str | None

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._file: BinaryIO = open(self.path, "rb")  # noqa: SIM115 -- closed by close()
        except OSError as exc:
            raise TraceError(f"Cannot open the trace {self.path}: {exc.strerror}.") from exc
        try:
            self._size = os.fstat(self._file.fileno()).st_size
            self._cache: OrderedDict[int, _Chunk] = OrderedDict()
            self._strings: dict[int, str] = {}
            self._decoder_table: list[_Decoder] | None = None
            self.damage = None
            self._read_header()
            self._locate_chunks()
        except BaseException:
            self._file.close()
            raise

    # -- public API ------------------------------------------------------------------------
    @property
    def ended_early(self) -> bool:
        """True when the trace has no (readable) footer: the recording did not finish."""
        return self.footer is None

    def __len__(self) -> int:
        return self._total

    def __iter__(self) -> Iterator[Event]:
        return self.events()

    @overload
    def __getitem__(self, n: int) -> Event: ...

    @overload
    def __getitem__(self, n: slice) -> list[Event]: ...

    def __getitem__(self, n: int | slice) -> Event | list[Event]:
        if isinstance(n, slice):
            start, stop, step = n.indices(self._total)
            if step == 1:
                return list(self.events(start, stop))
            return [self[i] for i in range(start, stop, step)]
        if n < 0:
            n += self._total
        if not 0 <= n < self._total:
            raise IndexError(f"event #{n} is not in this trace of {self._total} events")
        k = bisect_right(self._first_seqs, n) - 1
        events = self._events_of(k)
        return events[n - self._first_seqs[k]]

    def events(self, start: int = 0, stop: int | None = None) -> Iterator[Event]:
        """Events start..stop-1 (clamped to the trace), decoded a chunk at a time."""
        stop = self._total if stop is None else min(stop, self._total)
        start = max(start, 0)
        if start >= stop:
            return
        k = bisect_right(self._first_seqs, start) - 1
        while k < len(self._index):
            first = self._first_seqs[k]
            if first >= stop:
                return
            events = self._events_of(k)
            lo = max(start - first, 0)
            hi = min(stop - first, len(events))
            yield from events[lo:hi]
            k += 1

    def close(self) -> None:
        self._file.close()
        self._cache.clear()

    def __enter__(self) -> Trace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- opening ---------------------------------------------------------------------------
    def _read_header(self) -> None:
        head = self._pread(0, len(HEADER_PREFIX) + 1)
        if not head.startswith(HEADER_PREFIX):
            if not head:
                raise TraceError(
                    f"{self.path} is empty, where a trace begins with the format name "
                    f"{FORMAT_NAME!r}."
                )
            if HEADER_PREFIX.startswith(head):
                raise TraceError(
                    f"{self.path} is cut short inside its header ({self._size} bytes); "
                    "it holds no events."
                )
            raise TraceError(
                f"{self.path} is not a wasitrace trace: it begins with {head[:17]!r}, "
                f"where a trace begins with the format name {FORMAT_NAME!r}."
            )
        if len(head) <= len(HEADER_PREFIX):
            raise TraceError(f"{self.path} is cut short inside its header; it holds no events.")
        # Versions 1-127 are one positive fixint byte; a larger one starts with an int marker.
        version = head[len(HEADER_PREFIX)]
        if version > FORMAT_VERSION:
            found = f"version {version}" if version < 0x80 else "a version above 127"
            raise TraceError(
                f"{self.path} is a wasitrace trace of format {found}, but this wasitrace "
                f"reads format version {FORMAT_VERSION} only; upgrade wasitrace to read it."
            )
        if version < 1:
            raise TraceError(
                f"{self.path} claims format version {version}, which never existed; "
                f"this wasitrace reads format version {FORMAT_VERSION}."
            )
        pos = len(HEADER_PREFIX) + 1
        try:
            body, end = self._read_bin_and_crc(pos)
            wire = msgpack.unpackb(body)
            self.header = TraceHeader.from_wire(wire, version)
        except _Bad as bad:
            raise TraceError(f"{self.path} has a damaged header ({bad.what}).") from None
        except _DECODE_ERRORS as exc:
            raise TraceError(f"{self.path} has a malformed header ({exc}).") from None
        known = tuple(op.name for op in OPERATIONS)
        recorded = self.header.operations
        for code, name in enumerate(recorded[: len(known)]):
            if name != known[code]:
                raise TraceError(
                    f"{self.path} was recorded with operation {name!r} as code {code}, "
                    f"where this wasitrace has {known[code]!r}; it cannot be read here."
                )
        self._n_ops = len(recorded)
        self._data_start = end

    def _locate_chunks(self) -> None:
        self.footer = None
        self._index: list[IndexEntry] = []
        if not self._read_footer():
            self._scan()
        self._first_seqs = [e.first_seq for e in self._index]
        self._first_strings = [e.first_string for e in self._index]
        self._first_blobs = [e.first_blob for e in self._index]
        self._first_stats = [e.first_stat for e in self._index]

    def _read_footer(self) -> bool:
        """Use the trailer and footer if both are intact; False means scan instead."""
        if self._size < self._data_start + TRAILER_SIZE:
            return False
        head, magic, offset = TRAILER.unpack(self._pread(self._size - TRAILER_SIZE, TRAILER_SIZE))
        if head != TRAILER_HEAD or magic != TRAILER_MAGIC:
            return False
        if not self._data_start <= offset < self._size - TRAILER_SIZE:
            return False
        try:
            kind, body, end = self._read_frame(offset)
            if kind != KIND_FOOTER or end != self._size - TRAILER_SIZE:
                return False
            footer, index = self._decode_footer(msgpack.unpackb(body))
        except (_Bad, *_DECODE_ERRORS):
            return False
        # The index must describe chunks that lie between the header and the footer in order.
        last = self._data_start - 1
        seq = 0
        for entry in index:
            if not last < entry.offset < offset or entry.first_seq < seq:
                return False
            last, seq = entry.offset, entry.first_seq
        if seq > footer.total_events or (index and index[0].offset != self._data_start):
            return False
        self.footer = footer
        self._index = index
        self._total = footer.total_events
        return True

    def _decode_footer(self, wire: Any) -> tuple[Footer, list[IndexEntry]]:
        names = self.header.operations
        flat = wire["index"]
        if len(flat) % INDEX_FIELDS:
            raise ValueError("index length")
        index = [IndexEntry(*flat[i : i + INDEX_FIELDS]) for i in range(0, len(flat), INDEX_FIELDS)]
        for entry in index:
            if not all(isinstance(v, int) and v >= 0 for v in entry):
                raise ValueError("index entry")
        exit_status = wire["exit_status"]
        total = wire["total_events"]
        if not isinstance(total, int) or not (exit_status is None or isinstance(exit_status, int)):
            raise TypeError("footer fields")
        counts = {names[i]: int(n) for i, n in enumerate(wire["counts"]) if n}
        errors = {names[i]: int(n) for i, n in enumerate(wire["errors"]) if n}
        trap = wire.get("trap")
        if not (trap is None or isinstance(trap, str)):
            raise TypeError("footer trap")
        return Footer(exit_status, total, counts, errors, tuple(index), trap), index

    def _scan(self) -> None:
        """Build the index by reading every chunk, stopping at the first bad or missing one."""
        pos = self._data_start
        seq = strings = blobs = stats = 0
        problem: str | None = None
        while pos < self._size:
            try:
                kind, body, end = self._read_frame(pos)
            except _Bad as bad:
                if bad.incomplete:
                    what = "footer" if bad.kind == KIND_FOOTER else "chunk"
                    problem = (
                        f"the last {self._size - pos} bytes (from offset {pos}) are an "
                        f"incomplete {what}, so the recording was interrupted"
                    )
                else:
                    what = "footer" if bad.kind == KIND_FOOTER else "chunk"
                    problem = f"the {what} at offset {pos} is damaged ({bad.what})"
                break
            if kind == KIND_FOOTER:
                problem = f"its footer at offset {pos} does not decode"
                try:
                    footer, _ = self._decode_footer(msgpack.unpackb(body))
                except _DECODE_ERRORS:
                    break
                if footer.total_events != seq:
                    problem = f"its footer counts {footer.total_events} events, not {seq}"
                    break
                # Complete but for the trailer; every chunk was checked on the way here.
                self.footer = footer
                self._total = seq
                self.damage = (
                    f"The trace {self.path} has a damaged or missing trailer; its footer was "
                    "found by reading every chunk."
                )
                return
            try:
                wire = msgpack.unpackb(body)
                chunk = _Chunk(wire)
                defined = (len(chunk.strings), len(chunk.blobs), len(chunk.stat_defs))
                firsts = wire[0:7:2]
            except _DECODE_ERRORS:
                problem = f"the chunk at offset {pos} does not decode"
                break
            if (
                tuple(firsts) != (seq, strings, blobs, stats)
                or not isinstance(chunk.n_events, int)
                or chunk.n_events < 0
                or defined[2] % STAT_FIELDS
            ):
                problem = f"the chunk at offset {pos} is out of sequence"
                break
            self._index.append(IndexEntry(pos, seq, strings, blobs, stats))
            seq += chunk.n_events
            strings += defined[0]
            blobs += defined[1]
            stats += defined[2] // STAT_FIELDS
            pos = end
        else:
            problem = "it has no footer, so the recording was interrupted"
        self._total = seq
        if problem is not None:
            last = f"event #{seq - 1}" if seq else "its header, with no events"
            self.damage = f"The trace {self.path} ends early after {last}: {problem}."

    # -- frames ----------------------------------------------------------------------------
    def _pread(self, offset: int, size: int) -> bytes:
        self._file.seek(offset)
        return self._file.read(size)

    def _read_bin_and_crc(self, pos: int) -> tuple[bytes, int]:
        """A bin32 body and uint32 crc starting at `pos`; returns (body, end offset)."""
        head = self._pread(pos, 5)
        if len(head) < 5:
            raise _Bad("it is cut short", incomplete=True)
        if head[0] != BIN32:
            raise _Bad(f"byte {head[0]:#04x} at offset {pos} where a bin32 marker belongs")
        length = int.from_bytes(head[1:5], "big")
        end = pos + 5 + length + FRAME_TAIL_SIZE
        if end > self._size:
            raise _Bad("it is cut short", incomplete=True)
        rest = self._pread(pos + 5, length + FRAME_TAIL_SIZE)
        body, tail = rest[:length], rest[length:]
        if tail[0] != UINT32 or int.from_bytes(tail[1:5], "big") != crc32(body):
            raise _Bad("its checksum does not match")
        return body, end

    def _read_frame(self, pos: int) -> _Frame:
        head = self._pread(pos, 2)
        if len(head) < 2:
            raise _Bad("it is cut short", incomplete=True)
        if head[0] != 0x93 or head[1] not in (KIND_CHUNK, KIND_FOOTER):
            raise _Bad(f"bytes {head.hex()} where a chunk or the footer should begin")
        try:
            body, end = self._read_bin_and_crc(pos + 2)
        except _Bad as bad:
            bad.kind = head[1]
            raise
        return _Frame(head[1], body, end)

    # -- chunks ----------------------------------------------------------------------------
    def _chunk(self, k: int) -> _Chunk:
        cached = self._cache.get(k)
        if cached is not None:
            self._cache.move_to_end(k)
            return cached
        entry = self._index[k]
        where = f"The chunk of events from #{entry.first_seq} (at {entry.offset}) of {self.path}"
        try:
            kind, body, _ = self._read_frame(entry.offset)
        except _Bad as bad:
            self.damage = f"{where} is damaged: {bad.what}."
            raise TraceError(self.damage) from None
        try:
            wire = msgpack.unpackb(body)
            chunk = _Chunk(wire)
            firsts = tuple(wire[0:7:2])
        except _DECODE_ERRORS:
            self.damage = f"{where} does not decode."
            raise TraceError(self.damage) from None
        expected = (entry.first_seq, entry.first_string, entry.first_blob, entry.first_stat)
        next_seq = self._first_seqs[k + 1] if k + 1 < len(self._index) else self._total
        if kind != KIND_CHUNK or firsts != expected or chunk.n_events != next_seq - entry.first_seq:
            self.damage = f"{where} does not match the trace's index."
            raise TraceError(self.damage)
        self._cache[k] = chunk
        if len(self._cache) > CHUNK_CACHE_SIZE:
            self._cache.popitem(last=False)
        return chunk

    def _defining_chunk(self, firsts: list[int], ident: int, what: str) -> tuple[_Chunk, int]:
        k = bisect_right(firsts, ident) - 1
        if k < 0:
            raise TraceError(f"The trace {self.path} refers to undefined {what} #{ident}.")
        return self._chunk(k), ident - firsts[k]

    def _string(self, sid: int) -> str:
        s = self._strings.get(sid)
        if s is None:
            chunk, i = self._defining_chunk(self._first_strings, sid, "string")
            for j, value in enumerate(chunk.strings):
                self._strings[sid - i + j] = value
            s = self._strings.get(sid)
            if s is None:
                raise TraceError(f"The trace {self.path} refers to undefined string #{sid}.")
        return s

    def _blob(self, bid: int) -> bytes:
        chunk, i = self._defining_chunk(self._first_blobs, bid, "data block")
        if not 0 <= i < len(chunk.blobs):
            raise TraceError(f"The trace {self.path} refers to undefined data block #{bid}.")
        blob = chunk.blobs[i]
        if not isinstance(blob, bytes):
            raise TraceError(f"The trace {self.path} has a malformed data block #{bid}.")
        return blob

    def _stat(self, sid: int) -> DescriptorStat:
        chunk, i = self._defining_chunk(self._first_stats, sid, "stat")
        if chunk.stats is None:
            chunk.stats = self._decode_stats(chunk.stat_defs)
        if not 0 <= i < len(chunk.stats):
            raise TraceError(f"The trace {self.path} refers to undefined stat #{sid}.")
        return chunk.stats[i]

    def _decode_stats(self, flat: list[Any]) -> list[DescriptorStat]:
        out = []
        device = inode = base = 0
        for i in range(0, len(flat), STAT_FIELDS):
            d_dev, d_ino, type_sid, links, size, *times = flat[i : i + STAT_FIELDS]
            device = unwrap(device + d_dev)
            inode = unwrap(inode + d_ino)
            stamps: list[int | None] = []
            for t in times:
                if t is None:
                    stamps.append(None)
                else:
                    base = unwrap(base + t)
                    stamps.append(base)
            out.append(
                DescriptorStat(
                    device, inode, DescriptorType(self._string(type_sid)), links, size, *stamps
                )
            )
        return out

    def _events_of(self, k: int) -> list[Event]:
        chunk = self._chunk(k)
        if chunk.events is None:
            try:
                chunk.events = self._decode_events(chunk)
            except _DECODE_ERRORS:
                self.damage = f"The events from #{chunk.first_seq} in {self.path} do not decode."
                raise TraceError(self.damage) from None
        return chunk.events

    def _decode_events(self, chunk: _Chunk) -> list[Event]:
        flat = msgpack.unpackb(chunk.events_packed)
        if not isinstance(flat, list) or len(flat) != EVENT_FIELDS * chunk.n_events:
            raise ValueError("the events do not add up to the chunk's count")
        decoders = self._decoders()
        events: list[Event] = []
        seq = chunk.first_seq
        n_ops = len(decoders)
        error_codes = ERROR_CODES
        values = iter(flat)
        for flag, args, outcome, duration in zip(values, values, values, values, strict=True):
            code = flag >> 1
            if not 0 <= code < n_ops:
                raise TraceError(
                    f"Event #{seq} in {self.path} uses operation code {code}, which this "
                    f"wasitrace does not know (it knows {n_ops}); upgrade wasitrace to read it."
                )
            op, arity, arg_decoders, result_decoder = decoders[code]
            if len(args) != arity:
                raise ValueError("wrong number of arguments")
            if arg_decoders:
                for j, dec in arg_decoders:
                    args[j] = dec(args[j])
            error: ErrorCode | None = None
            result: Any = None
            if flag & 1:
                error = error_codes[outcome]
            elif result_decoder is not None:
                result = result_decoder(outcome)
            elif outcome is not None:
                raise ValueError("a result where the operation returns nothing")
            if duration.__class__ is not int or duration < 0:
                raise TypeError("duration")
            events.append(Event(seq, op, tuple(args), result, error, duration * 1000))
            seq += 1
        return events

    def _decoders(self) -> list[_Decoder]:
        if self._decoder_table is None:
            self._decoder_table = self._make_decoders()
        return self._decoder_table

    def _make_decoders(self) -> list[_Decoder]:
        string = self._string

        def data(v: Any) -> bytes:
            if isinstance(v, bytes):
                return v
            if isinstance(v, int):
                return self._blob(v)
            raise TypeError("data")

        def entries(flat: list[Any]) -> list[DirectoryEntry]:
            return [
                DirectoryEntry(DescriptorType(string(flat[j])), string(flat[j + 1]), flat[j + 2])
                for j in range(0, len(flat), 3)
            ]

        def timestamp(v: Any) -> Any:
            if v is None or v == "now" or (isinstance(v, int) and not isinstance(v, bool)):
                return v
            raise TypeError("timestamp")

        def integer(v: Any) -> int:
            if isinstance(v, int):
                return v
            raise TypeError("int")

        def strings(v: Any) -> list[str]:
            return [str(s) for s in v]

        def pairs(v: Any) -> list[tuple[Any, Any]]:
            return [(a, b) for a, b in v]

        def by_kind(kind: Kind, enum: Any) -> Any:
            if kind is Kind.ENUM:
                return lambda v: enum(string(v))
            return {
                Kind.INT: integer,
                Kind.TIMESTAMP: timestamp,
                Kind.STR: string,
                Kind.BYTES: data,
                Kind.STAT: self._stat,
                Kind.ENTRIES: entries,
                Kind.STRINGS: strings,
                Kind.PAIRS: pairs,
            }[kind]

        table: list[_Decoder] = []
        for spec in OP_SPECS:
            arg_decoders = tuple(
                (j, by_kind(p.kind, p.enum))
                for j, p in enumerate(spec.params)
                if p.kind is not Kind.INT
            )
            result: Any
            if spec.result.kind is Kind.NONE:
                result = None
            elif spec.result.kind is Kind.INT:
                result = integer
            else:
                result = by_kind(spec.result.kind, spec.result.enum)
            table.append((spec.op, len(spec.params), arg_decoders, result))
        return table
