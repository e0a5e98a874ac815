"""The reference runner: a guest under wasmtime's own built-in WASI, as a command.

(With it: `run_wasitrace()`, the same for `wasitrace run`, and `snapshot()`, what a run left
in a directory tree, so tests can compare the two.)

The differential tests compare wasitrace against this. It takes the same command line as
`wasitrace run` (and the `wasmtime` command), so one argument list serves both:

    python -m tests.reference [--dir HOST::GUEST[:ro]]... [--env KEY[=VALUE]]... [--stdin FILE]
                              [--argv0 NAME] [--invoke EXPORT] [--trap-unknown-imports]
                              GUEST.wasm [GUEST ARGS...]

It runs in a process of its own, so the guest's stdout, stderr and exit status are captured
exactly as a command's are. Like the wasmtime command, argv[0] is the module's file name unless
`--argv0` is given, a trap exits with 134 (128 + SIGABRT) after an `Error:` message on stderr,
`--invoke` calls `_initialize` first and prints the export's results one per line, and
`--trap-unknown-imports` defines imports from outside WASI as functions that trap (without it,
such a module fails to instantiate: exit status 1).

`run_reference()` runs it from Python and returns an `Outcome`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import wasmtime

TRAP_STATUS = 134  # what the wasmtime command exits with on a trap: 128 + SIGABRT
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Outcome:
    """What a command run of a guest produced."""

    stdout: bytes
    stderr: bytes
    status: int


@dataclass(frozen=True)
class Preopen:
    host: str
    guest: str
    read_only: bool = False

    @classmethod
    def parse(cls, spec: str) -> Preopen:
        """`HOST::GUEST[:ro]`, or a bare `DIR` that the guest sees under the same name."""
        host, sep, guest = spec.partition("::")
        if not sep:
            guest = host
        read_only = guest.endswith(":ro")
        if read_only:
            guest = guest[: -len(":ro")]
        if not host or not guest:
            raise argparse.ArgumentTypeError(f"--dir wants HOST::GUEST[:ro], got {spec!r}")
        return cls(host, guest, read_only)


def _env_pair(spec: str) -> tuple[str, str]:
    """`KEY=VALUE`, or `KEY` alone to pass this process's own value through, as wasmtime does."""
    key, sep, value = spec.partition("=")
    if not key:
        raise argparse.ArgumentTypeError(f"--env wants KEY=VALUE or KEY, got {spec!r}")
    if not sep:
        value = os.environ.get(key, "")
    return key, value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.reference",
        description="Run a WASI guest under wasmtime's own WASI (the reference for wasitrace).",
    )
    parser.add_argument("--dir", dest="dirs", action="append", default=[], type=Preopen.parse)
    parser.add_argument("--env", action="append", default=[], type=_env_pair)
    parser.add_argument("--stdin", help="a file the guest reads as stdin (default: inherited)")
    parser.add_argument("--argv0", help="argv[0] for the guest (default: the module's file name)")
    parser.add_argument("--invoke", help="call this export instead of _start")
    parser.add_argument(
        "--trap-unknown-imports",
        action="store_true",
        help="define imports that are not WASI as functions that trap",
    )
    parser.add_argument("guest", help="the .wasm module")
    parser.add_argument("guest_args", nargs=argparse.REMAINDER)
    return parser


def _invoke_arguments(ty: wasmtime.FuncType, texts: Sequence[str]) -> list[int | float]:
    params = ty.params
    if len(params) != len(texts):
        raise SystemExit(f"--invoke: the export takes {len(params)} arguments, got {len(texts)}")
    values: list[int | float] = []
    for param, text in zip(params, texts, strict=True):
        values.append(
            float(text)
            if param in (wasmtime.ValType.f32(), wasmtime.ValType.f64())
            else int(text, 0)
        )
    return values


def run(options: argparse.Namespace) -> int:
    """Runs the guest in this process, its stdio being this process's; returns the exit status."""
    config = wasmtime.Config()
    # setjmp/longjmp guests (and MicroPython) need the exception-handling proposal.
    config.wasm_exceptions = True
    engine = wasmtime.Engine(config)
    module = wasmtime.Module.from_file(engine, options.guest)
    store = wasmtime.Store(engine)

    wasi = wasmtime.WasiConfig()
    wasi.argv = [options.argv0 or Path(options.guest).name, *options.guest_args]
    wasi.env = options.env
    if options.stdin is not None:
        wasi.stdin_file = options.stdin
    else:
        wasi.inherit_stdin()
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    for preopen in options.dirs:
        wasi.preopen_dir(preopen.host, preopen.guest, fs_mutable=not preopen.read_only)
    store.set_wasi(wasi)

    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    if options.trap_unknown_imports:
        # Like `wasmtime run -W unknown-imports-trap=y`.
        linker.define_unknown_imports_as_traps(module)
    name = Path(options.guest).name
    try:
        instance = linker.instantiate(store, module)
    except wasmtime.WasmtimeError as error:
        print(f"Error: failed to instantiate `{name}`: {error}", file=sys.stderr)
        return 1
    try:
        exports = instance.exports(store)
        if options.invoke is None:
            start = exports.get("_start")
            if isinstance(start, wasmtime.Func):
                start(store)
            return 0
        initialize = exports.get("_initialize")
        if isinstance(initialize, wasmtime.Func):
            initialize(store)
        func = exports.get(options.invoke)
        if not isinstance(func, wasmtime.Func):
            print(f"Error: the module has no exported function {options.invoke!r}", file=sys.stderr)
            return 1
        results = func(store, *_invoke_arguments(func.type(store), options.guest_args))
        sys.stdout.flush()
        for value in results if isinstance(results, list) else [] if results is None else [results]:
            print(value, flush=True)
        return 0
    except wasmtime.ExitTrap as exit_:
        return exit_.code
    except (wasmtime.Trap, wasmtime.WasmtimeError) as trap:
        print(
            f"Error: failed to run main module `{name}`\n\nCaused by:\n    {trap}", file=sys.stderr
        )
        return TRAP_STATUS


def main(argv: Sequence[str] | None = None) -> int:
    return run(_parser().parse_args(argv))


def command(args: Sequence[str]) -> list[str]:
    """The argv that runs the reference runner with `args` (the `wasitrace run` arguments)."""
    return [sys.executable, "-m", "tests.reference", *args]


def run_reference(args: Sequence[str], *, timeout: float = 60.0) -> Outcome:
    """Runs `python -m tests.reference ARGS` and returns what it printed and its exit status."""
    result = subprocess.run(
        command(args),
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return Outcome(result.stdout, result.stderr, result.returncode)


def run_wasitrace(
    args: Sequence[str], *, timeout: float = 60.0, command: str = "run", cwd: Path | None = None
) -> Outcome:
    """Runs `python -m tracer.cli COMMAND ARGS` and returns what it printed and its exit status."""
    result = subprocess.run(
        [sys.executable, "-m", "tracer.cli", command, *args],
        cwd=cwd or REPO_ROOT,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return Outcome(result.stdout, result.stderr, result.returncode)


# A tree, path by path (relative, "/"-separated): its type and what it holds.
Tree = dict[str, tuple[str, str]]


def snapshot(root: Path) -> Tree:
    """What a directory tree holds: each entry's type and its symlink target or file contents.

    Times, modes and inode numbers are left out: they differ between two faithful runs.
    """
    entries: Tree = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                entries[rel] = ("symlink", os.readlink(path))
            elif path.is_dir():
                entries[rel] = ("dir", "")
            elif path.is_file():
                data = path.read_bytes()
                shown = (
                    repr(data)
                    if len(data) <= 200
                    else f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}"
                )
                entries[rel] = ("file", shown)
            else:
                entries[rel] = ("other", "")
    return entries


if __name__ == "__main__":
    raise SystemExit(main())
