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
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from tracer import logs
from tracer.backend import Backend, Filesystem
from tracer.runner import GuestError, Outcome, RunOptions, load_module, make_engine, run_in_thread
from tracer.sandbox import Mount, Sandbox
from tracer.system import HostSystem

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
    return outcome.exit_status


def cmd_run(ns: argparse.Namespace) -> int:
    outcome = execute(ns, build_sandbox(ns))
    return report_outcome(outcome, ns.debug)


# -- registry ------------------------------------------------------------------------------------
Handler = Callable[[argparse.Namespace], int]
COMMANDS: list[tuple[str, Handler, str]] = [
    ("run", cmd_run, "run a WASI preview 1 guest"),
]
REGISTER: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "run": add_run_options,
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
