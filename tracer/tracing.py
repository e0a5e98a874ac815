"""The tracing proxy: a `Backend` that delegates every operation and records it to a trace.

`TracingBackend(inner, writer)` has one method per entry of `tracer.operations.OPERATIONS`, each
built when the instance is made from one template, so there are no per-operation copies to keep
in step and no attribute-lookup routing. Each method times the inner call with perf_counter_ns,
puts its arguments and outcome in their stored form (looking interned values up in the writer's
tables) and appends them to the writer's pending values; the writer packs a chunk at a time.

Why the methods are generated from source text (as `dataclasses` and `namedtuple` do) rather than
being `*args` closures: a generated method has the operation's exact parameter list, so keyword
calls work and a wrong call fails with Python's usual message, and it runs as fast as a
hand-written one. The text is fixed but for the operation's name and parameter names, which come
from OPERATIONS and are checked to be identifiers.

Outcomes: a return value is recorded as is; a `WasiError` is recorded by its code and re-raised;
any other exception is a bug in the inner backend, so nothing is recorded and it propagates.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter_ns
from typing import Any, cast

from tracer.backend import Backend
from tracer.errors import WasiError
from tracer.operations import OPERATIONS, Operation
from tracer.trace.format import ERROR_INDEX, OP_SPECS, Kind
from tracer.trace.writer import TraceWriter

# The template of one recording method. `{params}` is the operation's parameter list and `{args}`
# the tuple of its arguments as stored; `{encode_args}` / `{encode_result}` are the lines that turn
# strings, bytes and stats into their stored form (inline, or an id from the writer's tables).
# Internal names start with `_t_` and encoded values `_v_`, so no parameter can shadow them.
_TEMPLATE = """
def make(_t_call, _t_clock, _t_extend, _t_values, _t_limit, _t_flush, _t_strings, _t_stats,
         _t_string, _t_data, _t_stat, _t_entries, _t_errors, _t_WasiError):
    def {name}(self, {params}):
{encode_args}        _t_start = _t_clock()
        try:
            _t_result = _t_call({params})
        except _t_WasiError as _t_error:
            _t_elapsed = (_t_clock() - _t_start) // 1000
            _t_extend(({failed}, {args}, _t_errors[_t_error.code], _t_elapsed))
            if len(_t_values) >= _t_limit:
                _t_flush()
            raise
        _t_elapsed = (_t_clock() - _t_start) // 1000
{encode_result}        _t_extend(({succeeded}, {args}, {result}, _t_elapsed))
        if len(_t_values) >= _t_limit:
            _t_flush()
        return _t_result
    return {name}
"""

_INDENT = " " * 8
_Factory = Callable[..., Callable[..., Any]]


def _encode(kind: Kind, value: str, target: str) -> tuple[str, str]:
    """Lines that store `value` (a variable) in its encoded form; returns (lines, expression)."""
    lines: list[str] = []
    if kind in (Kind.INT, Kind.TIMESTAMP):
        return "", value
    if kind is Kind.NONE:
        return "", "None"
    if kind in (Kind.STR, Kind.ENUM):
        lines = [
            f"{target} = _t_strings.get({value})",
            f"if {target} is None:",
            f"    {target} = _t_string({value})",
        ]
    elif kind is Kind.BYTES:
        # Tables.data copies a view of guest memory (which changes after the call) and stores
        # the data inline or as a blob.
        lines = [f"{target} = _t_data({value})"]
    elif kind is Kind.STAT:
        lines = [
            f"{target} = _t_stats.get({value})",
            f"if {target} is None:",
            f"    {target} = _t_stat({value})",
        ]
    elif kind is Kind.ENTRIES:
        lines = [f"{target} = _t_entries({value})"]
    else:
        # Lists (arguments, environment, preopens) are copied: the caller may change its own.
        lines = [f"{target} = list({value})"]
    return "".join(_INDENT + line + "\n" for line in lines), target


def _factory(op: Operation) -> _Factory:
    spec = OP_SPECS[op.code]
    for name in (op.name, *op.params):
        if not name.isidentifier() or name.startswith("_") or name == "self":
            raise ValueError(f"operation {op.name!r}: {name!r} cannot be a parameter name")
    encode_args = ""
    stored = []
    for p in spec.params:
        lines, expr = _encode(p.kind, p.name, f"_v_{p.name}")
        encode_args += lines
        stored.append(expr)
    encode_result, result = _encode(spec.result.kind, "_t_result", "_v_result")
    source = _TEMPLATE.format(
        name=op.name,
        params=", ".join(op.params),
        args="(" + "".join(f"{s}, " for s in stored) + ")",
        encode_args=encode_args,
        encode_result=encode_result,
        failed=2 * op.code + 1,
        succeeded=2 * op.code,
        result=result,
    )
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<tracing {op.name}>", "exec"), namespace)  # see module docstring
    return cast(_Factory, namespace["make"])


# Compiled once at import; each TracingBackend binds them to its inner backend and writer.
_FACTORIES: tuple[_Factory, ...] = tuple(_factory(op) for op in OPERATIONS)


class TracingBackend:
    """Wraps `inner`, recording every call to `writer`. See `tracing_backend` for typing.

    Each instance gets a class of its own, holding the methods bound to its inner backend and
    writer. As class attributes they are methods to the interpreter, which specializes the
    callers' `backend.op(...)` sites; as instance attributes every call looked them up through
    the instance's dictionary (about 230 instructions a call).
    """

    inner: Backend
    writer: TraceWriter

    def __new__(cls, inner: Backend, writer: TraceWriter) -> TracingBackend:
        tables = writer.tables
        methods: dict[str, Any] = {}
        for op, make in zip(OPERATIONS, _FACTORIES, strict=True):
            call = getattr(inner, op.name, None)
            if call is None:
                raise TypeError(
                    f"TracingBackend needs a whole Backend, but {inner!r} has no {op.name!r}."
                )
            method = make(
                call,
                perf_counter_ns,
                writer.values.extend,
                writer.values,
                writer.chunk_values,
                writer.flush,
                tables.strings,
                tables.stats,
                tables.string,
                tables.data,
                tables.stat,
                tables.entries,
                ERROR_INDEX,
                WasiError,
            )
            method.__qualname__ = f"{cls.__qualname__}.{op.name}"
            if writer.native is not None:
                # The same recording in C; the Python method lends it its signature.
                method = writer.native.recorder(op.code, call, op.params, method)
            methods[op.name] = method
        own = type(cls.__name__, (cls,), {**methods, "__qualname__": cls.__qualname__})
        return super().__new__(own)

    def __init__(self, inner: Backend, writer: TraceWriter) -> None:
        self.inner = inner
        self.writer = writer

    def __repr__(self) -> str:
        return f"TracingBackend({self.inner!r}, writer for {str(self.writer.path)!r})"


def tracing_backend(inner: Backend, writer: TraceWriter) -> Backend:
    """A `TracingBackend`, typed as the `Backend` it is.

    mypy cannot see methods attached in `__init__`, so it would not accept a `TracingBackend`
    where a `Backend` is expected. The cast is sound because the methods are built from
    OPERATIONS, which `tests/test_operations.py` keeps equal to the `Backend` protocol, and
    `tests/test_tracing_backend.py` checks every protocol member has the same signature here.
    """
    return cast(Backend, TracingBackend(inner, writer))
