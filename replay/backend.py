"""`ReplayBackend`: a `Backend` that answers every operation from a trace.

Each call is checked against the next recorded event: the same operation with the same
arguments. A match is answered with the recorded outcome (the value, or the recorded `WasiError`);
the first mismatch raises a `Divergence`, which stops the guest and carries the report.

Replay touches no host file and never sleeps: clocks, randomness, arguments, environment,
preopens and stdin all come from the trace. The guest's stdout and stderr writes are checked like
any call and then written to this process's streams, so the output is reproduced byte for byte.

The per-operation methods are made from `tracer.operations.OPERATIONS` in one loop (no
per-operation copies); `replay_backend()` gives the instance its `Backend` type.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, cast

from replay.divergence import Call, Divergence
from tracer.backend import Backend
from tracer.errors import WasiError, from_os_error
from tracer.operations import OPERATIONS, Operation
from tracer.trace.reader import Event, Trace

RECENT = 5


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except OSError as exc:
            raise from_os_error(exc) from exc


class ReplayBackend:
    """Serves a trace's recorded outcomes; see the module docstring.

    `stdout_fd` / `stderr_fd` receive the guest's output (None discards it).
    """

    def __init__(
        self, trace: Trace, *, stdout_fd: int | None = 1, stderr_fd: int | None = 2
    ) -> None:
        self.trace = trace
        self.total = len(trace)
        self._events: Iterator[Event] = trace.events()
        self.position = 0  # the number of events matched so far
        self.recent: deque[Event] = deque(maxlen=RECENT)
        self._outputs = {"write_stdout": stdout_fd, "write_stderr": stderr_fd}
        for op in OPERATIONS:
            setattr(self, op.name, self._method(op))

    def _method(self, op: Operation) -> Callable[..., Any]:
        check = self._check
        output = self._outputs.get(op.name)

        if output is not None:

            def write_stream(*args: Any) -> Any:
                event = check(op, args)
                if event.error is not None:
                    raise WasiError(event.error)
                _write_all(output, args[0])
                return event.result

            return write_stream

        def answer(*args: Any) -> Any:
            event = check(op, args)
            if event.error is not None:
                raise WasiError(event.error)
            return event.result

        return answer

    def _check(self, op: Operation, args: tuple[Any, ...]) -> Event:
        event = next(self._events, None)
        if event is None:
            raise Divergence(self.position, self.total, None, Call(op, args), list(self.recent))
        if event.op is not op or event.args != args:
            raise Divergence(self.position, self.total, event, Call(op, args), list(self.recent))
        self.position += 1
        self.recent.append(event)
        return event

    def finish(self, exit_status: int | None, trap: str | None) -> None:
        """After the guest ended: the trace must have ended too, the same way."""
        event = next(self._events, None)
        if event is not None:
            raise Divergence(self.position, self.total, event, None, list(self.recent))
        footer = self.trace.footer
        if footer is None:
            return
        recorded = _ending(footer.exit_status, footer.trap)
        actual = _ending(exit_status, trap)
        if recorded != actual:
            raise Divergence(
                self.position,
                self.total,
                None,
                None,
                list(self.recent),
                exit_status=(recorded, actual),
            )


def _ending(exit_status: int | None, trap: str | None) -> str:
    if trap is not None:
        return f"a trap ({trap})"
    if exit_status is None:
        return "no exit status"
    return f"exit status {exit_status}"


def replay_backend(trace: Trace, **streams: int | None) -> tuple[Backend, ReplayBackend]:
    """A ReplayBackend typed as a Backend (its methods are made per operation at run time)."""
    replayer = ReplayBackend(trace, **streams)
    return cast(Backend, replayer), replayer


__all__ = ["Divergence", "ReplayBackend", "replay_backend"]
