"""Writing a trace: `TraceWriter` encodes events as they come and writes checksummed chunks.

Events reach the writer by one of two equal paths, chosen when it is made:
- native (the default where `tracer._record` was built): a C `Recording` captures each event's
  values on the caller's thread and a worker thread of its own interns, encodes and writes the
  chunks after the header (see tracer/_record.c); `TracingBackend` gets C recorders from it.
- Python: an event is four values appended to `TraceWriter.values` (flag, encoded arguments,
  encoded outcome, duration in microseconds), already in their stored form, so a chunk is
  written with one msgpack call. `TracingBackend`'s generated methods extend that list.
  Interned values are looked up in the dicts of `Tables` and defined through its methods.
Both give the same bytes (tests/test_native_recorder.py): `Tables` and `flush` here are the
definition, which the C code follows step for step.

A chunk is written every `CHUNK_EVENTS` events, as soon as `CHUNK_BULK_BYTES` of new bulk data are
pending, on `flush()`, and at `close()`, each with one unbuffered write(), so whatever was written
survives the process being killed; the reader finds the last complete chunk.

Interning: strings (paths, enum values), descriptor-stats and bulk byte strings get ids in order of
first occurrence, and the definition travels in the chunk being filled when it is first seen, so
a reader that has chunks 0..k can decode chunk k. The lookup dicts are bounded: when one is full it
forgets (bulk data: its oldest entries), and a value seen again is then simply defined again.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack
from xxhash import xxh3_64_intdigest

from tracer.backend import DescriptorStat, DirectoryEntry
from tracer.errors import ErrorCode, WasiError
from tracer.operations import OPERATIONS
from tracer.trace.format import (
    CHUNK_BULK_BYTES,
    CHUNK_EVENTS,
    ERROR_INDEX,
    EVENT_FIELDS,
    INLINE_BYTES,
    KIND_CHUNK,
    KIND_FOOTER,
    OP_SPECS,
    Kind,
    TraceHeader,
    frame,
    header_frame,
    trailer,
    wrap_delta,
)

_Recording: type[Recording] | None
try:
    from tracer._record import Recording as _Recording
except ImportError:  # built without a C compiler: the Python path does the same, more slowly
    _Recording = None

if TYPE_CHECKING:
    from tracer._record import Recording

# Bounds on the writer's memory (see the module docstring).
MAX_INTERNED_STRINGS = 1 << 20
MAX_INTERNED_STATS = 1 << 17
BLOB_WINDOW_BYTES = 32 << 20


class TraceWriteError(OSError):
    """The trace file could not be written (the disk is full, the file too large, ...).

    Whatever was written before stays readable: the reader stops at the last whole chunk."""


def default_trace_path(guest_path: str | Path, now: datetime | None = None) -> Path:
    """`./traces/<guest-stem>-<YYYYmmdd-HHMMSS>.wtrace`, with -2, -3... if that name is taken."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    stem = f"{Path(guest_path).stem}-{stamp}"
    candidate = Path("traces") / f"{stem}.wtrace"
    n = 2
    while candidate.exists():
        candidate = Path("traces") / f"{stem}-{n}.wtrace"
        n += 1
    return candidate


class Tables:
    """The intern tables, and the definitions made since the last chunk was written.

    Callers look a value up in `strings`, `blobs` or `stats` first and call `string()`, `blob()`
    or `stat()` only on a miss (those define a new id); `data()` and `entries()` do both.
    """

    def __init__(self, on_bulk_full: Callable[[], None]) -> None:
        self.strings: dict[str, int] = {}
        # Bulk data by the xxh3 digest of its content: (content, id). A hit is confirmed by
        # comparing the content, so a digest collision costs a new definition, never a wrong one.
        self.blobs: dict[int, tuple[bytes, int]] = {}
        self.stats: dict[DescriptorStat, int] = {}
        self.n_strings = self.n_blobs = self.n_stats = 0
        self.new_strings: list[str] = []
        self.new_blobs: list[bytes] = []
        self.new_stats: list[int | None] = []
        self.new_bulk = 0
        self._blob_window = 0
        self._on_bulk_full = on_bulk_full
        # Stat fields are delta-encoded against the previous definition in the same chunk (so a
        # chunk decodes on its own); these are the running bases, reset by `take()`.
        self._base_device = self._base_inode = self._base_time = 0

    def string(self, value: str) -> int:
        if len(self.strings) >= MAX_INTERNED_STRINGS:
            self.strings.clear()
        sid = self.strings[value] = self.n_strings
        self.n_strings += 1
        self.new_strings.append(str(value))  # a StrEnum member is stored as its plain value
        return sid

    def blob(self, value: bytes, digest: int) -> int:
        # xxh3 rather than the content as the key: Python's own hash of a fresh 4 KiB read costs
        # about ten times as much, and every read of bulk data pays it. The window bounds the
        # memory the table holds.
        self._blob_window += len(value)
        blobs = self.blobs
        while self._blob_window > BLOB_WINDOW_BYTES and blobs:
            oldest = next(iter(blobs))
            self._blob_window -= len(blobs.pop(oldest)[0])
        bid = self.n_blobs
        blobs.pop(digest, None)  # a collision's older entry: re-inserted, so it is now newest
        blobs[digest] = (value, bid)
        self.n_blobs += 1
        self.new_blobs.append(value)
        self.new_bulk += len(value)
        if self.new_bulk >= CHUNK_BULK_BYTES:
            # Writing the chunk now is fine even mid-event: the definition lands in it, and the
            # event that uses the id follows in a later chunk.
            self._on_bulk_full()
        return bid

    def data(self, value: bytes) -> bytes | int:
        if value.__class__ is not bytes:
            value = bytes(value)
        if len(value) < INLINE_BYTES:
            return value
        digest = xxh3_64_intdigest(value)
        known = self.blobs.get(digest)
        if known is not None and known[0] == value:
            return known[1]
        return self.blob(value, digest)

    def stat(self, value: DescriptorStat) -> int:
        # The definition of stat interning; tracer/_record.c follows it step for step.
        stats = self.stats
        if len(stats) >= MAX_INTERNED_STATS:
            stats.clear()
        sid = self.n_stats
        stats[value] = sid
        self.n_stats = sid + 1
        device, inode, type_, link_count, size, atime, mtime, ctime = value
        type_id = self.strings.get(type_)
        if type_id is None:
            type_id = self.string(type_)
        base = self._base_time
        d_times: list[int | None] = []
        for stamp in (atime, mtime, ctime):
            if stamp is None:
                d_times.append(None)
            else:
                d_times.append(wrap_delta(stamp - base))
                base = stamp
        self._base_time = base
        d_device = wrap_delta(device - self._base_device)
        d_inode = wrap_delta(inode - self._base_inode)
        self.new_stats += (d_device, d_inode, type_id, link_count, size, *d_times)
        self._base_device = device
        self._base_inode = inode
        return sid

    def interned_stat(self, value: DescriptorStat) -> int:
        sid = self.stats.get(value)
        return self.stat(value) if sid is None else sid

    def interned_string(self, value: str) -> int:
        sid = self.strings.get(value)
        return self.string(value) if sid is None else sid

    def entries(self, value: Sequence[DirectoryEntry]) -> list[int]:
        out: list[int] = []
        strings = self.strings
        for type_, name, inode in value:
            t = strings.get(type_)
            out.append(self.string(type_) if t is None else t)
            n = strings.get(name)
            out.append(self.string(name) if n is None else n)
            out.append(inode)
        return out

    def firsts(self) -> tuple[int, int, int]:
        return self.n_strings, self.n_blobs, self.n_stats

    def take(self) -> tuple[list[str], list[bytes], list[int | None]]:
        """The definitions for the chunk being written; starts the next chunk's."""
        taken = self.new_strings, self.new_blobs, self.new_stats
        self.new_strings, self.new_blobs, self.new_stats = [], [], []
        self.new_bulk = 0
        self._base_device = self._base_inode = self._base_time = 0
        return taken

    def encoder(self, kind: Kind) -> Callable[[Any], Any] | None:
        """How a value of `kind` is stored, or None if it is stored as it is."""
        encoders: dict[Kind, Callable[[Any], Any]] = {
            Kind.STR: self.interned_string,
            Kind.ENUM: self.interned_string,
            Kind.BYTES: self.data,
            Kind.STAT: self.interned_stat,
            Kind.ENTRIES: self.entries,
            Kind.STRINGS: list,
            Kind.PAIRS: list,
        }
        return encoders.get(kind)


class TraceWriter:
    """Writes one trace file. Use `record()` (or `TracingBackend`), then `close(exit_status)`."""

    def __init__(self, path: str | Path, header: TraceHeader, native: bool | None = None) -> None:
        """`native`: record through tracer._record (default: where it is built, unless the
        environment sets WASITRACE_PURE_PYTHON)."""
        self.path = Path(path)
        self.header = header
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Unbuffered: each chunk reaches the kernel in the one write() that carries it.
        self._file = open(self.path, "wb", buffering=0)  # noqa: SIM115 -- closed by close()
        self._offset = 0
        self._seq = 0
        self._index: list[int] = []
        self._counts: Counter[int] = Counter()
        self._closed = False
        self._write(header_frame(msgpack.packb(header.to_wire())))
        # One packer for the writer's life: `msgpack.packb` makes a new one, with a fresh
        # buffer, every call, which costs more than packing a chunk's events.
        self._pack = msgpack.Packer().pack
        self.tables = Tables(self.flush)
        # The pending events, EVENT_FIELDS values each. TracingBackend's generated methods
        # extend this very list and flush when it reaches `chunk_values`.
        self.values: list[Any] = []
        self.chunk_values = CHUNK_EVENTS * EVENT_FIELDS
        if native is None:
            native = _Recording is not None and not os.environ.get("WASITRACE_PURE_PYTHON")
        self.native: Recording | None = None
        if native:
            if _Recording is None:
                raise RuntimeError("tracer._record was not built; record with native=False.")
            # It writes the chunks, after the header.
            self.native = _Recording(
                self._file.fileno(),
                self._offset,
                ERROR_INDEX,
                WasiError,
                [bytes([*(p.kind for p in spec.params), spec.result.kind]) for spec in OP_SPECS],
                CHUNK_EVENTS,
                CHUNK_BULK_BYTES,
                INLINE_BYTES,
                MAX_INTERNED_STRINGS,
                MAX_INTERNED_STATS,
                BLOB_WINDOW_BYTES,
                os.environ.get("WASITRACE_RECORD_THREAD", "1") != "0",
                TraceWriteError,
                str(self.path),
            )
        self._chunk_firsts = (0, 0, 0)
        # How `record()` stores values on the Python path.
        self._arg_encoders: list[tuple[tuple[int, Callable[[Any], Any]], ...]] = []
        self._result_encoders: list[Callable[[Any], Any] | None] = []
        for spec in OP_SPECS if self.native is None else ():
            converted = []
            for i, p in enumerate(spec.params):
                enc = self.tables.encoder(p.kind)
                if enc is not None:
                    converted.append((i, enc))
            self._arg_encoders.append(tuple(converted))
            self._result_encoders.append(self.tables.encoder(spec.result.kind))

    def record(
        self,
        op_code: int,
        args: Sequence[Any],
        ok: Any,
        err: ErrorCode | None,
        duration_ns: int,
    ) -> None:
        """Record one call: its arguments, its result `ok` or its error code `err`, its time."""
        if self._closed:
            raise ValueError(f"The trace writer for {self.path} is closed.")
        if self.native is not None:
            error = None if err is None else ERROR_INDEX[err]
            self.native.record(op_code, args, ok, error, duration_ns // 1000)
            return
        encoded = list(args)
        for i, enc in self._arg_encoders[op_code]:
            encoded[i] = enc(encoded[i])
        if err is None:
            enc_result = self._result_encoders[op_code]
            outcome = ok if enc_result is None else enc_result(ok)
            self.values.extend((op_code << 1, encoded, outcome, duration_ns // 1000))
        else:
            self.values.extend(((op_code << 1) | 1, encoded, ERROR_INDEX[err], duration_ns // 1000))
        if len(self.values) >= self.chunk_values:
            self.flush()

    @property
    def events_recorded(self) -> int:
        if self.native is not None:
            return self.native.events
        return self._seq + len(self.values) // EVENT_FIELDS

    def flush(self) -> None:
        """Write the pending events and definitions as one chunk (nothing if there are none)."""
        if self.native is not None:
            self.native.flush()  # and waits until it is written
            return
        values = self.values
        strings, blobs, stats = self.tables.take()
        n_events = len(values) // EVENT_FIELDS
        if not n_events and not blobs and not strings and not stats:
            return
        if self._closed:
            raise ValueError(f"The trace writer for {self.path} is closed.")
        pack = self._pack
        first_string, first_blob, first_stat = self._chunk_firsts
        head = [self._seq, n_events, first_string, strings, first_blob, blobs, first_stat]
        # The last item is packed apart so a reader after a definition need not decode the
        # events.
        body = pack([*head, stats, pack(values)])
        self._counts.update(values[0::EVENT_FIELDS])
        # Cleared in place: generated methods hold this very list.
        values.clear()
        self._index.extend((self._offset, self._seq, first_string, first_blob, first_stat))
        self._chunk_firsts = self.tables.firsts()
        self._seq += n_events
        self._write(frame(KIND_CHUNK, body))

    def close(self, exit_status: int | None = None, trap: str | None = None) -> None:
        """Write the last chunk, the footer and the trailer, and close the file. Idempotent.

        `exit_status` is the guest's, if it exited; `trap` the trap message, if it trapped.
        """
        if self._closed:
            return
        counts = self._counts
        if self.native is None:
            self.flush()
        else:
            self._offset, self._seq, self._index = self.native.finish()
            counts = Counter(dict(enumerate(self.native.counts())))
        self._closed = True
        n_ops = len(OPERATIONS)
        footer = {
            "exit_status": exit_status,
            "total_events": self._seq,
            "counts": [counts[2 * i] + counts[2 * i + 1] for i in range(n_ops)],
            "errors": [counts[2 * i + 1] for i in range(n_ops)],
            "index": self._index,
            "tables": list(self.next_ids()),
            "trap": trap,
        }
        footer_offset = self._offset
        self._write(frame(KIND_FOOTER, msgpack.packb(footer)) + trailer(footer_offset))
        self._file.close()

    def next_ids(self) -> tuple[int, int, int]:
        """The ids the next string, blob and stat definitions will get: how many were made."""
        if self.native is not None:
            return self.native.next_ids()
        return self.tables.firsts()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(None)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._file.fileno(), view)
                view = view[n:]
        except OSError as exc:
            raise TraceWriteError(exc.errno, exc.strerror, str(self.path)) from None
        self._offset += len(data)
