"""A guest run under a `Stepper`: a live run that records while it is stepped, or a replay.

`live_session(LiveRun(...))` and `replay_session(trace_path, guest)` load the guest and prepare
the backend in the calling thread, so that a missing guest or an unwritable trace fails before
the TUI opens; `Session.run()` then runs the guest to its end in whatever thread calls it (the TUI
calls it from a worker thread, where wasmtime's Store is made and used), and returns a
`SessionEnd`. `Session.abort()` stops the guest from any thread, paused or computing.

The guest's standard streams are not the terminal (that belongs to the TUI): stdin is
`LiveRun.stdin` or empty, and stdout/stderr go nowhere. What the guest wrote is in its
write_stdout / write_stderr calls, which the TUI shows.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import wasmtime

from tracer.backend import Backend
from tracer.recording import recorded_options, run_header
from tracer.runner import GuestError, Interrupt, RunOptions, load_module, make_engine, run_module
from tracer.sandbox import Mount, Sandbox
from tracer.system import HostSystem
from tracer.trace import TraceHeader, TraceWriter, default_trace_path, open_trace
from tracer.tracing import tracing_backend
from tui.source import CallLog
from tui.stepping import Pending, Stepper, SteppingAborted, stepping_backend

# The process exit statuses of `wasitrace` (tracer/cli.py lists them; a test keeps them equal).
EXIT_CANNOT_RUN = 126
EXIT_INTERNAL = 128
EXIT_INTERRUPTED = 130
EXIT_TRAP = 134
EXIT_DIVERGED = 135


@dataclass(frozen=True)
class LiveRun:
    """What `wasitrace tui --live` runs: the guest, how it is run, and where the trace goes.

    `argv`, `env` and `mounts` are a `Sandbox`'s (`build_sandbox(ns)` gives them as
    `.arguments()`, `.environment()` and `.mounts`). `trace_path` None records to
    `default_trace_path(guest)`.
    """

    guest: Path
    argv: Sequence[str]
    env: Sequence[tuple[str, str]] = ()
    mounts: Sequence[Mount] = ()
    trace_path: Path | None = None
    options: RunOptions = field(default_factory=RunOptions)
    stdin: Path | None = None


@dataclass
class SessionEnd:
    """How a stepped run ended: exactly one of the ways below."""

    exit_status: int | None = None
    trap: str | None = None
    aborted: bool = False
    divergence: str | None = None  # the rendered divergence report of a replay
    cannot_run: str | None = None  # the guest could not be run (e.g. it exports no _start)
    failure: str | None = None  # wasitrace itself failed (a bug)

    @property
    def exit_code(self) -> int:
        """What `wasitrace tui` exits with, in the CLI's terms."""
        if self.failure is not None:
            return EXIT_INTERNAL
        if self.cannot_run is not None:
            return EXIT_CANNOT_RUN
        if self.divergence is not None:
            return EXIT_DIVERGED
        if self.aborted:
            return EXIT_INTERRUPTED
        if self.trap is not None:
            return EXIT_TRAP
        return self.exit_status if self.exit_status is not None else 0

    def describe(self) -> str:
        if self.failure is not None:
            return f"wasitrace failed: {self.failure}"
        if self.cannot_run is not None:
            return self.cannot_run
        if self.divergence is not None:
            return self.divergence.splitlines()[0]  # "The guest departed from the trace at ..."
        if self.aborted:
            return "aborted: the guest was stopped"
        if self.trap is not None:
            return f"the guest trapped: {self.trap}"
        return f"the guest exited with status {self.exit_status}"


class Session:
    """One guest, its stepper and the log of its calls. Made by `live_session`/`replay_session`."""

    def __init__(
        self,
        *,
        kind: str,
        header: TraceHeader,
        engine: wasmtime.Engine,
        module: wasmtime.Module,
        backend: Backend,
        options: RunOptions,
        trace_path: Path | None,
        finish: Callable[[SessionEnd], None],
        cleanup: Callable[[], None],
        diverged: Callable[[Exception], str | None] = lambda exc: None,
    ) -> None:
        self.kind = kind  # "live" or "replay"
        self.header = header
        self.trace_path = trace_path
        self.log = CallLog()
        self.stepper = Stepper(backend, on_call=self.log.append)
        self._engine = engine
        self._module = module
        self._options = options
        self._finish = finish
        self._cleanup = cleanup
        self._diverged = diverged
        self._interrupt = Interrupt(engine)
        self.end: SessionEnd | None = None

    @property
    def preopens(self) -> list[str]:
        return [p.guest_path for p in self.header.preopens]

    def on_pause(self, callback: Callable[[Pending], None]) -> None:
        self.stepper.on_pause = callback

    def run(self) -> SessionEnd:
        """Run the guest to its end in this thread (it pauses as the stepper is told)."""
        end = SessionEnd()
        try:
            try:
                outcome = run_module(
                    self._engine,
                    self._module,
                    stepping_backend(self.stepper),
                    self._options,
                    self._interrupt,
                )
                if outcome.interrupted:
                    end.aborted = True
                else:
                    end.exit_status, end.trap = outcome.exit_status, outcome.trap
            except SteppingAborted:
                end.aborted = True
            except Exception as exc:
                self._explain(end, exc)
            try:
                self._finish(end)
            except Exception as exc:
                self._explain(end, exc)
        finally:
            self._cleanup()
        self.end = end
        return end

    def _explain(self, end: SessionEnd, exc: Exception) -> None:
        if isinstance(exc, GuestError):
            end.cannot_run = str(exc)
            return
        report = self._diverged(exc)
        if report is not None:
            end.divergence = report
        else:
            # Anything else is a bug in wasitrace: told, not hidden.
            end.failure = f"{type(exc).__name__}: {exc}"

    def abort(self) -> None:
        """Stop the guest: at its next call, or at once if it is paused or computing."""
        self.stepper.abort()
        self._interrupt.request()


def live_session(run: LiveRun) -> Session:
    """A live run of `run.guest` that records to a trace while it is stepped."""
    engine = make_engine()
    module = load_module(engine, run.guest)
    options = run.options
    header = run_header(run.guest, run.argv, run.env, run.mounts, options)
    trace_path = run.trace_path if run.trace_path is not None else default_trace_path(run.guest)
    stdin_fd = os.open(run.stdin if run.stdin is not None else os.devnull, os.O_RDONLY)
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        writer = TraceWriter(trace_path, header)
    except BaseException:
        os.close(stdin_fd)
        os.close(sink)
        raise
    system = HostSystem(
        list(run.argv), list(run.env), stdin_fd=stdin_fd, stdout_fd=sink, stderr_fd=sink
    )
    sandbox = Sandbox(system, list(run.mounts))

    def finish(end: SessionEnd) -> None:
        writer.close(end.exit_status, end.trap)

    def cleanup() -> None:
        if not writer.closed:
            writer.close(None)
        os.close(stdin_fd)
        os.close(sink)

    return Session(
        kind="live",
        header=header,
        engine=engine,
        module=module,
        backend=tracing_backend(sandbox, writer),
        options=options,
        trace_path=trace_path,
        finish=finish,
        cleanup=cleanup,
    )


def replay_session(trace_path: Path, guest: Path | None = None) -> Session:
    """A replay of the trace at `trace_path`, stepped; `guest` defaults to the recorded one.

    `replay.backend` is imported here, when a replay is asked for, so the rest of the TUI does
    not depend on it.
    """
    from replay.backend import Divergence, replay_backend

    trace = open_trace(trace_path)
    try:
        recorded = trace.header.guest
        if guest is None:
            candidates = [Path(recorded.path), trace.path.parent / recorded.name]
            guest = next((c for c in candidates if c.is_file()), None)
            if guest is None:
                raise GuestError(
                    f"The recorded guest {recorded.path} is not there; give its path with --guest."
                )
        engine = make_engine()
        module = load_module(engine, guest)
    except BaseException:
        trace.close()
        raise
    options = recorded_options(trace.header)
    backend, replayer = replay_backend(trace, stdout_fd=None, stderr_fd=None)

    def finish(end: SessionEnd) -> None:
        # The trace must have ended where the guest did, the same way.
        if end.exit_status is not None or end.trap is not None:
            replayer.finish(end.exit_status, end.trap)

    def diverged(exc: Exception) -> str | None:
        return exc.render() if isinstance(exc, Divergence) else None

    return Session(
        kind="replay",
        header=trace.header,
        engine=engine,
        module=module,
        backend=backend,
        options=options,
        trace_path=trace.path,
        finish=finish,
        cleanup=trace.close,
        diverged=diverged,
    )
