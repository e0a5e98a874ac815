"""Stepping a guest call by call: a `Backend` that pauses before each operation until told to go on.

`Stepper(inner)` wraps any backend (a recording `TracingBackend` for a live run, a
`ReplayBackend` for a replay). The guest runs in a thread of its own; before each call the
stepper hands the call it is about to make to `on_pause` (a `Pending`) and waits for a command
from another thread (the TUI):

* `Step()`: make this call, and pause before the next;
* `ContinueUntil(predicate)`: make calls until one has completed for which `predicate(event)`
  holds (a breakpoint, usually a `tracer.render.parse_filter` expression; it sees the outcome,
  so `error` works), then pause before the next;
* `RunToEnd()`: make every call without pausing;
* `Abort()`: raise `SteppingAborted` instead of making the call, which ends the guest (an
  exception raised by a host function traps the guest and leaves wasmtime's `run_module`).

Every completed call is handed to `on_call` as an `Event` (the trace reader's type, numbered from
0 like the trace), so the caller can keep a log that the same formatting and filters apply to.

Like `tracer.tracing`, the methods are made per operation from `tracer.operations.OPERATIONS` in
one loop, with no per-operation code; `stepping_backend()` types the instance as a `Backend`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any, NamedTuple, cast

from tracer.backend import Backend
from tracer.errors import WasiError
from tracer.operations import OPERATIONS, Operation
from tracer.render import format_argument
from tracer.trace.format import OP_SPECS, Kind
from tracer.trace.reader import Event


class SteppingAborted(Exception):
    """The user stopped the guest from the stepper."""

    def __init__(self, seq: int) -> None:
        super().__init__(f"The guest was stopped before call #{seq}.")
        self.seq = seq


@dataclass(frozen=True)
class Step:
    pass


@dataclass(frozen=True)
class ContinueUntil:
    predicate: Callable[[Event], bool]


@dataclass(frozen=True)
class RunToEnd:
    pass


@dataclass(frozen=True)
class Abort:
    pass


Command = Step | ContinueUntil | RunToEnd | Abort


class Pending(NamedTuple):
    """A call the guest is about to make: number `seq`, operation, arguments."""

    seq: int
    op: Operation
    args: tuple[Any, ...]

    def describe(self) -> str:
        """`#12 open_at(fd 3, 0, "notes", directory, read)`."""
        args = ", ".join(
            format_argument(self.op, name, value)
            for name, value in zip(self.op.params, self.args, strict=True)
        )
        return f"#{self.seq} {self.op.name}({args})"


# Per operation, the positions of its bytes arguments: a host may pass a view of guest memory,
# which the log must copy because the guest will overwrite it.
_BYTES_ARGS: tuple[tuple[int, ...], ...] = tuple(
    tuple(i for i, p in enumerate(spec.params) if p.kind is Kind.BYTES) for spec in OP_SPECS
)


def _ignore(_: Any) -> None:
    return None


class Stepper:
    """A `Backend` over `inner` that pauses before each call; see the module docstring.

    `on_pause` and `on_call` are called in the guest's thread and must be quick (the TUI posts a
    message). `command()` and `abort()` may be called from any thread.
    """

    def __init__(
        self,
        inner: Backend,
        *,
        on_pause: Callable[[Pending], None] = _ignore,
        on_call: Callable[[Event], None] = _ignore,
    ) -> None:
        self.inner = inner
        self.on_pause = on_pause
        self.on_call = on_call
        self.calls = 0  # calls begun so far; the next call's number
        self._commands: queue.Queue[Command] = queue.Queue()
        self._mode: Command = Step()  # pause before the very first call
        self._aborted = threading.Event()
        self._paused = False
        for op in OPERATIONS:
            call = getattr(inner, op.name, None)
            if call is None:
                raise TypeError(f"Stepper needs a whole Backend, but {inner!r} has no {op.name!r}.")
            setattr(self, op.name, self._method(op, call))

    # -- from the controlling thread ----------------------------------------------------------
    def command(self, command: Command) -> None:
        """Tell the paused guest what to do next (queued if it is not paused yet)."""
        if isinstance(command, Abort):
            self._aborted.set()
        self._commands.put(command)

    def abort(self) -> None:
        self.command(Abort())

    @property
    def aborted(self) -> bool:
        return self._aborted.is_set()

    @property
    def paused(self) -> bool:
        return self._paused

    # -- in the guest's thread ------------------------------------------------------------------
    def _method(self, op: Operation, call: Callable[..., Any]) -> Callable[..., Any]:
        params = op.params
        arity = len(params)
        bytes_args = _BYTES_ARGS[op.code]

        def method(*args: Any, **kwargs: Any) -> Any:
            if kwargs or len(args) != arity:
                # Checked before the pause: a wrong call is a bug, not a call to step over.
                args = _bind(op, args, kwargs)
            seq = self.calls
            self.calls += 1
            self._before(Pending(seq, op, args))
            start = perf_counter_ns()
            try:
                result = call(*args)
            except WasiError as exc:
                self._after(Event(seq, op, _kept(args, bytes_args), None, exc.code, _since(start)))
                raise
            self._after(Event(seq, op, _kept(args, bytes_args), result, None, _since(start)))
            return result

        method.__name__ = method.__qualname__ = op.name
        method.__doc__ = f"{op.name}({', '.join(params)}), paused as the stepper is told."
        return method

    def _before(self, pending: Pending) -> None:
        if self._aborted.is_set():
            raise SteppingAborted(pending.seq)
        # A command queued while the guest ran (e.g. Run pressed during Continue) takes effect.
        while not self._commands.empty():
            self._mode = self._commands.get_nowait()
        if isinstance(self._mode, Step):
            self._paused = True
            self.on_pause(pending)
            try:
                self._mode = self._commands.get()
            finally:
                self._paused = False
        if isinstance(self._mode, Abort) or self._aborted.is_set():
            raise SteppingAborted(pending.seq)

    def _after(self, event: Event) -> None:
        self.on_call(event)
        mode = self._mode
        if isinstance(mode, ContinueUntil) and mode.predicate(event):
            self._mode = Step()


def _since(start: int) -> int:
    return perf_counter_ns() - start


def _kept(args: tuple[Any, ...], bytes_args: tuple[int, ...]) -> tuple[Any, ...]:
    if not bytes_args:
        return args
    kept = list(args)
    for i in bytes_args:
        if kept[i].__class__ is not bytes:
            kept[i] = bytes(kept[i])
    return tuple(kept)


def _bind(op: Operation, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Keyword arguments in parameter order, failing as Python would on a wrong call."""
    names = op.params
    if len(args) > len(names):
        raise TypeError(f"{op.name}() takes {len(names)} arguments but {len(args)} were given")
    values = list(args)
    for name in names[len(args) :]:
        if name not in kwargs:
            raise TypeError(f"{op.name}() missing argument {name!r}")
        values.append(kwargs.pop(name))
    if kwargs:
        raise TypeError(f"{op.name}() got unexpected arguments {', '.join(kwargs)}")
    return tuple(values)


def stepping_backend(stepper: Stepper) -> Backend:
    """The stepper typed as the `Backend` it is (its methods are attached per operation)."""
    return cast(Backend, stepper)
