"""The `wasitrace` command line.

Exit statuses (also in `--help`):
  0-125  the guest's own exit status
  2      the command line was wrong
  126    the guest could not be run (not a module, missing directory, bad trace, ...)
  128    wasitrace failed (a bug: please report it with the output of --debug)
  130    interrupted (Ctrl-C)
  134    the guest trapped
  135    replay: the guest departed from the trace
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from tracer import logs
from tracer.backend import Backend, Filesystem
from tracer.runner import GuestError, Outcome, RunOptions, load_module, make_engine, run_in_thread
from tracer.sandbox import Mount, Sandbox
from tracer.system import HostSystem

if TYPE_CHECKING:
    from tracer.trace import Event, Trace

EXIT_USAGE = 2
EXIT_CANNOT_RUN = 126
EXIT_INTERNAL = 128
EXIT_INTERRUPTED = 130
EXIT_TRAP = 134
EXIT_DIVERGED = 135

EXIT_STATUS_HELP = """\
exit status:
  0-125  the guest's own exit status
  2      the command line was wrong
  126    the guest could not be run (not a module, missing directory, bad trace, ...)
  128    wasitrace itself failed (a bug: please report it with the output of --debug)
  130    interrupted (Ctrl-C)
  134    the guest trapped (the trap is printed; --debug adds the wasm backtrace)
  135    replay: the guest departed from the trace (a divergence report is printed)
  diff exits 0 when the two traces make the same calls and 1 when they differ.
"""


class UserError(Exception):
    """Something the user can fix; the message is the sentence we print."""

    def __init__(self, message: str, status: int = EXIT_CANNOT_RUN) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class MountSpec:
    kind: str  # "dir" or "mem"
    host: str | None
    guest: str
    read_only: bool


def _split_mount(value: str) -> tuple[str | None, str, bool]:
    read_only = False
    if value.endswith(":ro"):
        value, read_only = value[: -len(":ro")], True
    if "::" in value:
        host, guest = value.split("::", 1)
        return host, guest or host, read_only
    return None, value, read_only


def dir_mount(value: str) -> MountSpec:
    host, guest, read_only = _split_mount(value)
    if host is None:
        host = guest
    if not host:
        raise argparse.ArgumentTypeError("--dir needs a host directory: --dir HOST[::GUEST][:ro]")
    return MountSpec("dir", host, guest, read_only)


def mem_mount(value: str) -> MountSpec:
    host, guest, read_only = _split_mount(value)
    if not guest:
        raise argparse.ArgumentTypeError("--mem needs a guest path: --mem [HOST::]GUEST[:ro]")
    return MountSpec("mem", host, guest, read_only)


def env_pair(value: str) -> tuple[str, str]:
    if "=" in value:
        key, _, val = value.partition("=")
    else:
        # As in the wasmtime command: --env NAME passes this process's value through.
        key, val = value, os.environ.get(value, "")
    if not key:
        raise argparse.ArgumentTypeError(f"--env needs KEY=VALUE, got {value!r}")
    return key, val


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        dest="mounts",
        action="append",
        type=dir_mount,
        default=[],
        metavar="HOST[::GUEST][:ro]",
        help="serve host directory HOST to the guest at GUEST (read-only with :ro)",
    )
    parser.add_argument(
        "--mem",
        dest="mounts",
        action="append",
        type=mem_mount,
        metavar="[HOST::]GUEST",
        help="give the guest an in-memory directory at GUEST, empty or a copy of HOST",
    )
    parser.add_argument(
        "--env",
        action="append",
        type=env_pair,
        default=[],
        metavar="KEY[=VALUE]",
        help="set an environment variable for the guest (KEY alone passes ours through)",
    )
    parser.add_argument("--stdin", metavar="FILE", help="read the guest's stdin from FILE")
    parser.add_argument("--argv0", metavar="NAME", help="the guest's argv[0] (default: file name)")
    parser.add_argument(
        "--invoke", metavar="EXPORT", help="call EXPORT (after _initialize) instead of _start"
    )
    parser.add_argument(
        "--trap-unknown-imports",
        action="store_true",
        help="define imports that are not WASI preview 1 as functions that trap",
    )
    parser.add_argument(
        "--plain-calls",
        action="store_true",
        help="define host functions through wasmtime's public API (slower; for comparison)",
    )
    parser.add_argument("guest", metavar="GUEST.wasm", help="the WebAssembly module to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the guest")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="log what wasitrace does")
    parser.add_argument(
        "--debug", action="store_true", help="log everything; show tracebacks and backtraces"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="wasitrace",
        description="Run WASI guests with a pluggable, traced and replayable filesystem.",
        epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, handler, summary in COMMANDS:
        sub = commands.add_parser(
            name,
            help=summary,
            description=summary,
            epilog=EXIT_STATUS_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _common(sub)
        REGISTER[name](sub)
        sub.set_defaults(handler=handler)
    return parser


# -- run ---------------------------------------------------------------------------------------
def _filesystem(spec: MountSpec) -> tuple[Filesystem, str, str]:
    # Imported here so `wasitrace show` and friends do not pay for them.
    if spec.kind == "dir":
        from tracer.backends.hostdir import HostDirBackend

        assert spec.host is not None
        _require_directory(spec.host, "--dir")
        return HostDirBackend(spec.host, read_only=spec.read_only), "hostdir", spec.host
    from tracer.backends.memory import MemoryBackend

    if spec.host is None:
        return MemoryBackend(), "memory", ""
    _require_directory(spec.host, "--mem")
    return MemoryBackend.from_host_dir(spec.host), "memory", spec.host


def _require_directory(path: str, option: str) -> None:
    if not os.path.exists(path):
        raise UserError(f"The host directory {path} given with {option} does not exist.")
    if not os.path.isdir(path):
        raise UserError(f"{path} given with {option} is not a directory.")


def build_sandbox(ns: argparse.Namespace) -> Sandbox:
    mounts = []
    for spec in ns.mounts:
        filesystem, kind, source = _filesystem(spec)
        mounts.append(Mount(spec.guest, filesystem, spec.read_only, kind, source))
    argv0 = ns.argv0 if ns.argv0 is not None else Path(ns.guest).name
    stdin_fd = 0
    if ns.stdin is not None:
        try:
            stdin_fd = os.open(ns.stdin, os.O_RDONLY)
        except OSError as exc:
            raise UserError(f"Cannot open {ns.stdin} given with --stdin: {exc.strerror}.") from None
    system = HostSystem([argv0, *ns.args], list(ns.env), stdin_fd=stdin_fd)
    return Sandbox(system, mounts)


def run_options(ns: argparse.Namespace) -> RunOptions:
    return RunOptions(
        invoke=ns.invoke,
        invoke_args=tuple(ns.args) if ns.invoke else (),
        trap_unknown_imports=ns.trap_unknown_imports,
        plain_calls=ns.plain_calls,
    )


def execute(ns: argparse.Namespace, backend: Backend) -> Outcome:
    engine = make_engine()
    module = load_module(engine, Path(ns.guest))
    return run_in_thread(engine, module, backend, run_options(ns))


def report_outcome(outcome: Outcome, debug: bool) -> int:
    if outcome.interrupted:
        print("wasitrace: interrupted; the guest was stopped.", file=sys.stderr)
        return EXIT_INTERRUPTED
    if outcome.trap is not None:
        print(f"wasitrace: the guest trapped: {outcome.trap}", file=sys.stderr)
        if debug and outcome.backtrace:
            print("wasm backtrace:\n" + outcome.backtrace, file=sys.stderr)
        return EXIT_TRAP
    assert outcome.exit_status is not None
    if outcome.results is not None:
        # As the wasmtime command does, print what an --invoke'd function returned.
        sys.stdout.write("".join(f"{value}\n" for value in outcome.results))
        sys.stdout.flush()
    return outcome.exit_status


def cmd_run(ns: argparse.Namespace) -> int:
    outcome = execute(ns, build_sandbox(ns))
    return report_outcome(outcome, ns.debug)


# -- record ------------------------------------------------------------------------------------
def add_record_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        metavar="TRACE",
        help="where to write the trace (default: ./traces/GUEST-TIME.wtrace, announced on stderr)",
    )
    add_run_options(parser)


def cmd_record(ns: argparse.Namespace) -> int:
    from tracer.recording import run_header
    from tracer.trace import TraceWriteError, TraceWriter, default_trace_path
    from tracer.tracing import tracing_backend

    sandbox = build_sandbox(ns)
    engine = make_engine()
    module = load_module(engine, Path(ns.guest))
    options = run_options(ns)
    header = run_header(
        ns.guest, sandbox.arguments(), sandbox.environment(), sandbox.mounts, options
    )
    path = Path(ns.output) if ns.output else default_trace_path(ns.guest)
    try:
        writer = TraceWriter(path, header)
    except OSError as exc:
        raise UserError(f"Cannot write the trace {path}: {exc.strerror}.") from None
    try:
        outcome = run_in_thread(engine, module, tracing_backend(sandbox, writer), options)
        writer.close(outcome.exit_status, outcome.trap)
    except TraceWriteError as exc:
        raise UserError(
            f"Cannot write the trace {path}: {exc.strerror}; the guest was stopped. "
            f"What was written before stays readable: wasitrace show {path}"
        ) from None
    finally:
        # Whatever happened, what was recorded stays readable.
        if not writer.closed:
            with contextlib.suppress(TraceWriteError):
                writer.flush()
    if not ns.output:
        print(f"wasitrace: trace written to {path}", file=sys.stderr)
    return report_outcome(outcome, ns.debug)


# -- replay ------------------------------------------------------------------------------------
def add_replay_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trace", metavar="TRACE", help="the trace to replay")
    _add_guest_choice(parser, "")
    parser.add_argument("--plain-calls", action="store_true", help=argparse.SUPPRESS)


def _add_guest_choice(parser: argparse.ArgumentParser, when: str) -> None:
    """--guest and --allow-different-guest, for the commands that replay."""
    parser.add_argument(
        "--guest",
        dest="replay_guest",
        metavar="GUEST.wasm",
        help=f"{when}the guest to run (default: the path in the trace)",
    )
    parser.add_argument(
        "--allow-different-guest",
        action="store_true",
        help=f"{when}run a guest whose sha256 differs from the recorded one (a new build)",
    )


def _replay_guest(trace: Trace, ns: argparse.Namespace) -> Path:
    from replay.api import WasitraceError, find_guest

    given = Path(ns.replay_guest) if ns.replay_guest else None
    try:
        return find_guest(trace, given, ns.allow_different_guest)
    except WasitraceError as exc:
        raise UserError(str(exc)) from None


def open_trace_or_fail(path: str) -> Trace:
    from tracer.trace import TraceError, open_trace

    try:
        return open_trace(path)
    except TraceError as exc:
        raise UserError(str(exc)) from None


def cmd_replay(ns: argparse.Namespace) -> int:
    from replay.backend import Divergence, replay_backend
    from tracer.recording import recorded_options

    with open_trace_or_fail(ns.trace) as trace:
        if trace.header.guest.abi != "preview1":
            raise UserError("This trace is of a preview 2 guest; wasitrace replays preview 1 here.")
        guest = _replay_guest(trace, ns)
        if trace.damage:
            print(f"wasitrace: {trace.damage}", file=sys.stderr)
        engine = make_engine()
        module = load_module(engine, guest)
        options = recorded_options(trace.header, plain_calls=ns.plain_calls)
        backend, replayer = replay_backend(trace)
        try:
            outcome = run_in_thread(engine, module, backend, options)
            if not outcome.interrupted:
                replayer.finish(outcome.exit_status, outcome.trap)
        except Divergence as divergence:
            sys.stdout.flush()
            print(f"wasitrace: {divergence.render()}", file=sys.stderr, end="")
            return EXIT_DIVERGED
        return report_outcome(outcome, ns.debug)


# -- show, stats, export -------------------------------------------------------------------------
def add_show_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trace", metavar="TRACE")
    parser.add_argument("--filter", metavar="EXPR", help="e.g. 'op=open_at,read path=*.txt error'")
    parser.add_argument(
        "-s", "--string-limit", type=int, default=32, metavar="BYTES", help="bytes of data shown"
    )


def _filter(expression: str | None) -> Callable[[Event], bool] | None:
    from tracer.render import FilterError, parse_filter

    if expression is None:
        return None
    try:
        return parse_filter(expression)
    except FilterError as exc:
        raise UserError(str(exc), EXIT_USAGE) from None


def _read_all(trace: Trace, emit: Callable[[Event], None]) -> None:
    from tracer.trace import TraceError

    try:
        for event in trace:
            emit(event)
    except TraceError as exc:
        print(f"wasitrace: {exc}", file=sys.stderr)
    if trace.damage:
        print(f"wasitrace: {trace.damage}", file=sys.stderr)


def cmd_show(ns: argparse.Namespace) -> int:
    from tracer.render import format_event

    keep = _filter(ns.filter)
    out = sys.stdout
    with open_trace_or_fail(ns.trace) as trace:

        def emit(event: Event) -> None:
            if keep is None or keep(event):
                out.write(format_event(event, ns.string_limit) + "\n")

        _read_all(trace, emit)
    return 0


def add_stats_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trace", metavar="TRACE")


def cmd_stats(ns: argparse.Namespace) -> int:
    from tracer.render import compute_stats, format_stats, format_summary

    with open_trace_or_fail(ns.trace) as trace:
        events: list[Event] = []
        _read_all(trace, events.append)
        for line in format_summary(trace.header, trace.footer, len(events), trace.damage):
            print(line)
        print()
        for line in format_stats(compute_stats(events)):
            print(line)
    return 0


def add_export_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trace", metavar="TRACE")
    parser.add_argument("--format", choices=["jsonl"], default="jsonl")
    parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")


def cmd_export(ns: argparse.Namespace) -> int:
    from tracer.render import export_jsonl, header_json

    with open_trace_or_fail(ns.trace) as trace:
        out = open(ns.output, "w") if ns.output else sys.stdout  # noqa: SIM115 -- closed below
        try:
            out.write(header_json(trace.header, trace.footer) + "\n")
            lines: list[str] = []
            _read_all(trace, lambda event: lines.extend(export_jsonl([event])))
            out.writelines(line + "\n" for line in lines)
        finally:
            if out is not sys.stdout:
                out.close()
    return 0


# -- diff --------------------------------------------------------------------------------------
def add_diff_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("first", metavar="TRACE_A")
    parser.add_argument("second", metavar="TRACE_B")
    parser.add_argument(
        "-U", "--unified", type=int, default=3, metavar="N", help="lines of context (default 3)"
    )
    parser.add_argument(
        "-s", "--string-limit", type=int, default=32, metavar="BYTES", help="bytes of data shown"
    )
    parser.add_argument(
        "--compare-volatile",
        action="store_true",
        help="also compare clock readings, random bytes and stat timestamps",
    )


def cmd_diff(ns: argparse.Namespace) -> int:
    from replay.diff import diff_traces
    from tracer.trace import TraceError

    with open_trace_or_fail(ns.first) as first, open_trace_or_fail(ns.second) as second:
        try:
            lines = diff_traces(
                first,
                second,
                context=ns.unified,
                max_bytes=ns.string_limit,
                compare_volatile=ns.compare_volatile,
            )
        except TraceError as exc:
            raise UserError(str(exc)) from None
    sys.stdout.write("".join(line + "\n" for line in lines))
    # As diff(1): 0 when the traces make the same calls, 1 when they differ.
    return 0 if len(lines) == 1 else 1


# -- tui ---------------------------------------------------------------------------------------
def add_tui_options(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--replay", action="store_true", help="step a replay of TRACE")
    mode.add_argument(
        "--live", action="store_true", help="step a live run of GUEST.wasm while it records"
    )
    _add_guest_choice(parser, "with --replay: ")
    parser.add_argument(
        "-o", "--output", metavar="TRACE", help="with --live: where to write the trace"
    )
    add_run_options(parser)


def cmd_tui(ns: argparse.Namespace) -> int:
    from tracer.trace import TraceError
    from tui.app import run_tui
    from tui.session import LiveRun

    # The screen is the TUI's: wasitrace's own log lines would scribble over it.
    logs.configure()
    try:
        if ns.live:
            from tracer.trace import default_trace_path

            sandbox = build_sandbox(ns)
            path = Path(ns.output) if ns.output else default_trace_path(ns.guest)
            status = run_tui(
                live=LiveRun(
                    Path(ns.guest),
                    sandbox.arguments(),
                    sandbox.environment(),
                    sandbox.mounts,
                    trace_path=path,
                    options=run_options(ns),
                    stdin=Path(ns.stdin) if ns.stdin else None,
                )
            )
            print(f"wasitrace: trace written to {path}", file=sys.stderr)
            return status
        if ns.args:
            raise UserError(f"tui takes one trace; unexpected: {' '.join(ns.args)}", EXIT_USAGE)
        trace_path = Path(ns.guest)
        if not ns.replay:
            return run_tui(trace_path)
        with open_trace_or_fail(str(trace_path)) as trace:
            guest = _replay_guest(trace, ns)
        return run_tui(trace_path, replay=True, guest=guest)
    except TraceError as exc:
        raise UserError(str(exc)) from None


# -- registry ------------------------------------------------------------------------------------
Handler = Callable[[argparse.Namespace], int]
COMMANDS: list[tuple[str, Handler, str]] = [
    ("run", cmd_run, "run a WASI preview 1 guest"),
    ("record", cmd_record, "run a guest and record every host call to a trace"),
    ("replay", cmd_replay, "re-run a guest from its trace alone and report where it departs"),
    ("show", cmd_show, "print a trace one call a line, like strace"),
    ("stats", cmd_stats, "per operation: calls, errors, time, bytes (like strace -c)"),
    ("export", cmd_export, "export a trace for other tools (JSON Lines)"),
    ("diff", cmd_diff, "compare two traces call by call, like diff -u over show"),
    ("tui", cmd_tui, "walk through a trace, or step a replay or a live run, in a terminal UI"),
]
REGISTER: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "run": add_run_options,
    "record": add_record_options,
    "replay": add_replay_options,
    "show": add_show_options,
    "stats": add_stats_options,
    "export": add_export_options,
    "diff": add_diff_options,
    "tui": add_tui_options,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    logs.configure(verbose=ns.verbose, debug=ns.debug)
    try:
        status: int = ns.handler(ns)
    except (UserError, GuestError) as exc:
        print(f"wasitrace: {exc}", file=sys.stderr)
        if ns.debug:
            traceback.print_exc()
        return exc.status if isinstance(exc, UserError) else EXIT_CANNOT_RUN
    except KeyboardInterrupt:
        print("wasitrace: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`wasitrace show T | head`): stop quietly, as cat does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        print(
            f"wasitrace: internal error: {type(exc).__name__}: {exc}. "
            "This is a bug in wasitrace; rerun with --debug for the traceback.",
            file=sys.stderr,
        )
        if ns.debug:
            traceback.print_exc()
        return EXIT_INTERNAL
    return status


def entry() -> NoReturn:
    sys.exit(main())


if __name__ == "__main__":
    entry()
