"""Traces: the file format (version 1), its writer and its reader.

`TraceWriter` writes a trace (usually fed by `tracer.tracing.TracingBackend`); `open_trace` reads
one. The format itself is described in docs/trace-format.md and defined in `format`.
"""

from tracer.trace.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    Footer,
    GuestInfo,
    IndexEntry,
    Preopen,
    TraceError,
    TraceHeader,
)
from tracer.trace.reader import Event, Trace, open_trace
from tracer.trace.writer import TraceWriteError, TraceWriter, default_trace_path

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Event",
    "Footer",
    "GuestInfo",
    "IndexEntry",
    "Preopen",
    "Trace",
    "TraceError",
    "TraceHeader",
    "TraceWriteError",
    "TraceWriter",
    "default_trace_path",
    "open_trace",
]
