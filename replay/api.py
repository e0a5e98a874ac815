"""Recording and replaying a guest from Python: the calls the pytest plugin (and the CLI) share.

`record_guest` runs a guest live over the given mounts and writes its trace; `replay_trace` re-runs
a guest from a trace alone. Both return a `RunResult` that holds what the guest wrote to stdout and
stderr (captured in temporary files, never printed), how it ended, and for a replay the
`Divergence` if the guest departed from the trace. Everything a user can fix (a missing trace, a
guest that is not the recorded one, a directory that does not exist) raises `WasitraceError` with
one sentence that says what happened.

A Ctrl-C while the guest runs stops it and is raised again here as `KeyboardInterrupt`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import wasmtime

from replay.backend import replay_backend
from replay.divergence import Divergence
from tracer.backend import Backend
from tracer.recording import recorded_options, run_header
from tracer.runner import GuestError, Outcome, RunOptions, load_module, make_engine, run_in_thread
from tracer.sandbox import Mount, Sandbox
from tracer.system import HostSystem
from tracer.trace import Trace, TraceError, TraceWriter, open_trace

# What `stdin=` accepts: the guest's whole stdin as bytes, or a file to read it from.
Stdin = bytes | str | os.PathLike[str] | None
DEFAULT_OPTIONS = RunOptions()


class WasitraceError(Exception):
    """A guest could not be recorded or replayed for a reason the user can fix; one sentence."""


@dataclass(frozen=True)
class RunResult:
    """How one recorded or replayed run of a guest went.

    `exit_status` is set when the guest exited, `trap` when it trapped; both are None when a
    replay stopped at a divergence (`divergence` then says where and how). `damage` is the
    reader's sentence about a trace that ends early, for a replay of one.
    """

    stdout: bytes
    stderr: bytes
    exit_status: int | None
    trap: str | None
    trace_path: Path
    recorded: bool  # True: this run recorded the trace; False: it replayed it
    divergence: Divergence | None = None
    damage: str | None = None

    @property
    def ok(self) -> bool:
        """The run ended without a divergence, trap or non-zero exit status."""
        return self.divergence is None and self.trap is None and self.exit_status == 0


# -- mounts --------------------------------------------------------------------------------------
def host_directory(
    guest_path: str, host_path: str | os.PathLike[str], *, read_only: bool = False
) -> Mount:
    """The host directory `host_path` served to the guest at `guest_path` (the guest changes it)."""
    from tracer.backends.hostdir import HostDirBackend

    _require_directory(host_path)
    return Mount(
        guest_path,
        HostDirBackend(host_path, read_only=read_only),
        read_only,
        "hostdir",
        os.fspath(host_path),
    )


def memory_directory(
    guest_path: str, host_path: str | os.PathLike[str] | None = None, *, read_only: bool = False
) -> Mount:
    """An in-memory directory at `guest_path`: empty, or a copy of `host_path` (left unchanged)."""
    from tracer.backends.memory import MemoryBackend

    if host_path is None:
        return Mount(guest_path, MemoryBackend(), read_only, "memory", "")
    _require_directory(host_path)
    return Mount(
        guest_path,
        MemoryBackend.from_host_dir(host_path),
        read_only,
        "memory",
        os.fspath(host_path),
    )


def _require_directory(path: str | os.PathLike[str]) -> None:
    if not os.path.exists(path):
        raise WasitraceError(f"The host directory {os.fspath(path)} does not exist.")
    if not os.path.isdir(path):
        raise WasitraceError(f"{os.fspath(path)} is not a directory.")


# -- recording -----------------------------------------------------------------------------------
def record_guest(
    guest: Path,
    args: Sequence[str],
    env: Sequence[tuple[str, str]],
    mounts: Sequence[Mount],
    trace_path: Path,
    *,
    stdin: Stdin = None,
    options: RunOptions = DEFAULT_OPTIONS,
    argv0: str | None = None,
    atomic: bool = False,
) -> RunResult:
    """Run `guest` live with `args` (argv[0] is `argv0`, by default the file name) and record it.

    `stdin` is the guest's whole stdin (None: empty). With `atomic`, the trace is written beside
    `trace_path` and moved there only once the guest has ended, so an existing trace survives a
    failed recording; without it, a recording that fails half-way leaves the part it wrote.
    """
    guest = Path(guest)
    trace_path = Path(trace_path)
    engine = make_engine()
    module = _load(engine, guest)
    name = argv0 if argv0 is not None else guest.name
    with _captured() as (out, err), _stdin(stdin) as stdin_fd:
        system = HostSystem(
            [name, *args],
            list(env),
            stdin_fd=stdin_fd,
            stdout_fd=out.fileno(),
            stderr_fd=err.fileno(),
        )
        sandbox = Sandbox(system, list(mounts))
        header = run_header(
            guest, sandbox.arguments(), sandbox.environment(), sandbox.mounts, options
        )
        target = trace_path.with_name(trace_path.name + ".part") if atomic else trace_path
        try:
            writer = TraceWriter(target, header)
        except OSError as exc:
            raise WasitraceError(f"Cannot write the trace {target}: {exc.strerror}.") from None
        try:
            outcome = _run(engine, module, _tracing(sandbox, writer), options)
        except BaseException:
            # What was recorded stays readable, unless it was only ever a temporary file.
            writer.close()
            if atomic:
                target.unlink(missing_ok=True)
            raise
        writer.close(outcome.exit_status, outcome.trap)
        if atomic:
            os.replace(target, trace_path)
        return RunResult(
            _read(out), _read(err), outcome.exit_status, outcome.trap, trace_path, recorded=True
        )


def _tracing(sandbox: Sandbox, writer: TraceWriter) -> Backend:
    from tracer.tracing import tracing_backend

    return tracing_backend(sandbox, writer)


# -- replaying -----------------------------------------------------------------------------------
def replay_trace(
    trace_path: Path,
    *,
    guest: Path | None = None,
    allow_different_guest: bool = False,
    plain_calls: bool = False,
) -> RunResult:
    """Re-run a guest from the trace at `trace_path` alone; no host file is touched.

    `guest` defaults to the recorded guest's path (or its file name beside the trace). A guest
    whose sha256 differs from the recorded one is refused unless `allow_different_guest`.
    """
    trace_path = Path(trace_path)
    with _open(trace_path) as trace:
        if trace.header.guest.abi != "preview1":
            raise WasitraceError(
                f"The trace {trace_path} is of a preview 2 guest; wasitrace replays preview 1."
            )
        module_path = find_guest(trace, guest, allow_different_guest)
        engine = make_engine()
        module = _load(engine, module_path)
        options = recorded_options(trace.header, plain_calls=plain_calls)
        with _captured() as (out, err):
            backend, replayer = replay_backend(
                trace, stdout_fd=out.fileno(), stderr_fd=err.fileno()
            )
            divergence: Divergence | None = None
            outcome = Outcome()
            try:
                outcome = _run(engine, module, backend, options)
                replayer.finish(outcome.exit_status, outcome.trap)
            except Divergence as caught:
                divergence = caught
                outcome = Outcome()
            return RunResult(
                _read(out),
                _read(err),
                outcome.exit_status,
                outcome.trap,
                trace_path,
                recorded=False,
                divergence=divergence,
                damage=trace.damage,
            )


def find_guest(trace: Trace, given: Path | None, allow_different: bool) -> Path:
    """The module to replay `trace` with; raises WasitraceError if it is missing or not the one."""
    recorded = trace.header.guest
    candidates = (
        [Path(given)]
        if given is not None
        else [Path(recorded.path), trace.path.parent / recorded.name]
    )
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        missing = given if given is not None else recorded.path
        raise WasitraceError(
            f"The guest {missing} is not there; give the path of the guest to replay."
        )
    if not allow_different and _sha256(found) != recorded.sha256:
        raise WasitraceError(
            f"{found} is not the guest the trace {trace.path} recorded (its sha256 differs); "
            "allow a different guest (--allow-different-guest) to replay a new build against it."
        )
    return found


# -- helpers -------------------------------------------------------------------------------------
def _open(path: Path) -> Trace:
    try:
        return open_trace(path)
    except TraceError as exc:
        raise WasitraceError(str(exc)) from None


def _load(engine: wasmtime.Engine, path: Path) -> wasmtime.Module:
    try:
        return load_module(engine, path)
    except GuestError as exc:
        raise WasitraceError(str(exc)) from None


def _run(
    engine: wasmtime.Engine, module: wasmtime.Module, backend: Backend, options: RunOptions
) -> Outcome:
    try:
        outcome = run_in_thread(engine, module, backend, options)
    except GuestError as exc:
        raise WasitraceError(str(exc)) from None
    if outcome.interrupted:
        raise KeyboardInterrupt
    return outcome


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _captured() -> Iterator[tuple[IO[bytes], IO[bytes]]]:
    # Temporary files, not pipes: the guest runs in this process, and nobody would drain a pipe.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        yield out, err


def _read(f: IO[bytes]) -> bytes:
    f.seek(0)
    return f.read()


@contextlib.contextmanager
def _stdin(stdin: Stdin) -> Iterator[int]:
    if stdin is None or isinstance(stdin, bytes):
        with tempfile.TemporaryFile() as f:
            f.write(stdin or b"")
            f.seek(0)
            yield f.fileno()
        return
    try:
        fd = os.open(stdin, os.O_RDONLY)
    except OSError as exc:
        raise WasitraceError(
            f"Cannot open {os.fspath(stdin)} for the guest's stdin: {exc.strerror}."
        ) from None
    try:
        yield fd
    finally:
        os.close(fd)
