"""Running one preview 1 guest on wasmtime over a `Backend`.

`load_module` checks the file and compiles it (wasmtime's compiled-code cache makes the second
start of a large guest fast); `run_module` links our preview 1 host layer, instantiates and calls
the entry point, and returns how the guest ended. The guest runs in a worker thread so that the
calling thread can stop it with `Interrupt.request()` (Ctrl-C) even while it spins in wasm code
without making host calls (epoch interruption).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import structlog
import wasmtime
from wasmtime._exportable import AsExtern
from wasmtime._instance import InstanceExports

from tracer.backend import Backend
from tracer.host import preview1
from tracer.host.fastcall import Definitions

log = structlog.get_logger("wasitrace.runner")

_WASM_MAGIC = b"\0asm"
_CORE_VERSION = b"\x01\x00\x00\x00"


class GuestError(Exception):
    """The guest cannot be run as given; the message is one sentence for the user."""


@dataclass
class Outcome:
    """How a guest run ended."""

    exit_status: int | None = None  # set when the guest exited (or returned from _start)
    trap: str | None = None  # set when the guest trapped: the trap message
    backtrace: str | None = None  # the guest's wasm backtrace, for --debug
    interrupted: bool = False
    results: list[object] | None = None  # what the --invoke'd export returned


@dataclass(frozen=True)
class RunOptions:
    invoke: str | None = None  # for reactors: the export to call after _initialize
    invoke_args: tuple[str, ...] = ()  # its arguments, as text (as the wasmtime command takes them)
    trap_unknown_imports: bool = False
    plain_calls: bool = False  # define host functions the slow, public way (for comparison)


def make_engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    config.cache = True
    config.wasm_exceptions = True
    config.epoch_interruption = True
    # Host functions keep a view of guest memory; a memory that never moves keeps it valid.
    config.memory_may_move = False
    return wasmtime.Engine(config)


def load_module(engine: wasmtime.Engine, path: Path) -> wasmtime.Module:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise GuestError(f"The guest file {path} does not exist.") from None
    except IsADirectoryError:
        raise GuestError(f"{path} is a directory, not a WebAssembly module.") from None
    except OSError as exc:
        raise GuestError(f"Cannot read the guest file {path}: {exc.strerror}.") from None
    if data[:4] != _WASM_MAGIC:
        raise GuestError(
            f"{path} is not a WebAssembly module (it does not start with the bytes \\0asm)."
        )
    if data[4:8] != _CORE_VERSION:
        if data[6:8] == b"\x01\x00":
            raise GuestError(
                f"{path} is a WebAssembly component (WASI 0.2); wasitrace runs preview 1 core "
                "modules here."
            )
        raise GuestError(f"{path} is a WebAssembly module of an unsupported version.")
    try:
        return wasmtime.Module(engine, data)
    except wasmtime.WasmtimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid module"
        raise GuestError(f"{path} is not a valid WebAssembly module: {first}.") from None


def _check_imports(module: wasmtime.Module, provided: set[str], trap_unknown: bool) -> None:
    unknown = [
        f"{imp.module}::{imp.name}"
        for imp in module.imports
        if not (imp.module == preview1.MODULE and imp.name in provided)
    ]
    if unknown and not trap_unknown:
        shown = ", ".join(unknown[:8]) + (
            f" and {len(unknown) - 8} more" if len(unknown) > 8 else ""
        )
        raise GuestError(
            f"The guest imports functions that are not WASI preview 1: {shown}. "
            "Use --trap-unknown-imports to run it with those functions trapping when called."
        )


class Interrupt:
    """Lets another thread stop a running guest."""

    def __init__(self, engine: wasmtime.Engine) -> None:
        self._engine = engine
        self.requested = False

    def request(self) -> None:
        self.requested = True
        self._engine.increment_epoch()


def _backtrace(trap: wasmtime.Trap) -> str:
    lines = []
    for i, frame in enumerate(trap.frames):
        name = frame.func_name or f"<func {frame.func_index}>"
        lines.append(f"  {i}: {name} @ {frame.module_offset:#x}")
    return "\n".join(lines)


def run_module(
    engine: wasmtime.Engine,
    module: wasmtime.Module,
    backend: Backend,
    options: RunOptions = RunOptions(),
    interrupt: Interrupt | None = None,
) -> Outcome:
    """Run the guest to its end in this thread."""
    invoke = options.invoke
    store = wasmtime.Store(engine)
    store.set_epoch_deadline(1)
    host = preview1.Preview1(backend)
    functions = host.functions()
    _check_imports(module, {f.name for f in functions}, options.trap_unknown_imports)
    linker = wasmtime.Linker(engine)
    definitions = Definitions()
    definitions.define(
        linker,
        preview1.MODULE,
        functions,
        expected=preview1.EXPECTED_ERRORS,
        to_result=preview1.errno_of,
        plain=options.plain_calls,
    )
    if options.trap_unknown_imports:
        linker.define_unknown_imports_as_traps(module)
    outcome = Outcome()
    try:
        try:
            instance = linker.instantiate(store, module)
        except wasmtime.WasmtimeError as exc:
            raise GuestError(f"The guest cannot be instantiated: {_first_line(exc)}.") from None
        exports = instance.exports(store)
        memory = exports.get("memory")
        host.attach(store, memory if isinstance(memory, wasmtime.Memory) else None)
        entry = _entry_point(exports, invoke)
        if invoke is not None and "_initialize" in exports:
            _call(store, exports["_initialize"])
        if invoke is None:
            _call(store, entry)
        else:
            values = _invoke_values(entry.type(store), options.invoke_args)
            returned = entry(store, *values)
            outcome.results = (
                []
                if returned is None
                else list(returned)
                if isinstance(returned, list)
                else [returned]
            )
        backend.exit(0)
        outcome.exit_status = 0
    except preview1.GuestExit as exc:
        outcome.exit_status = exc.status
    except preview1.GuestTrap as exc:
        outcome.trap = str(exc)
    except wasmtime.Trap as exc:
        if interrupt is not None and interrupt.requested:
            outcome.interrupted = True
        else:
            outcome.trap = _trap_message(exc.message)
            outcome.backtrace = _backtrace(exc)
    except wasmtime.WasmtimeError as exc:
        # A call to an import defined by --trap-unknown-imports arrives as an error, not a Trap.
        outcome.trap = _trap_message(str(exc))
    except preview1.MemoryFault as exc:
        outcome.trap = str(exc)
    finally:
        host.detach()
        del definitions
    return outcome


def _trap_message(message: str) -> str:
    """The cause of a trap without wasmtime's backtrace (that is shown under --debug)."""
    lines = [line.strip() for line in message.strip().splitlines()]
    if "Caused by:" in lines:
        cause = [line for line in lines[lines.index("Caused by:") + 1 :] if line]
        return "; ".join(cause)
    return lines[0] if lines else "unknown trap"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _entry_point(exports: InstanceExports, invoke: str | None) -> wasmtime.Func:
    name = invoke if invoke is not None else "_start"
    func = exports.get(name)
    if isinstance(func, wasmtime.Func):
        return func
    if invoke is None and "_initialize" in exports:
        raise GuestError(
            "The guest is a reactor module (it exports _initialize, not _start); "
            "name the function to call with --invoke NAME."
        )
    raise GuestError(f"The guest exports no function named {name}.")


def _invoke_values(ty: wasmtime.FuncType, texts: tuple[str, ...]) -> list[int | float]:
    params = ty.params
    if len(params) != len(texts):
        raise GuestError(
            f"The invoked function takes {len(params)} arguments; {len(texts)} were given."
        )
    floats = (wasmtime.ValType.f32(), wasmtime.ValType.f64())
    try:
        return [float(t) if p in floats else int(t, 0) for p, t in zip(params, texts, strict=True)]
    except ValueError:
        raise GuestError(f"The arguments {' '.join(texts)} are not numbers.") from None


def _call(store: wasmtime.Store, func: AsExtern) -> None:
    assert isinstance(func, wasmtime.Func)
    func(store)


def run_in_thread(
    engine: wasmtime.Engine,
    module: wasmtime.Module,
    backend: Backend,
    options: RunOptions = RunOptions(),
) -> Outcome:
    """Run the guest in a worker thread; Ctrl-C in this thread stops it."""
    interrupt = Interrupt(engine)
    result: list[Outcome] = []
    failure: list[BaseException] = []

    done = threading.Event()

    def work() -> None:
        try:
            result.append(run_module(engine, module, backend, options, interrupt))
        except BaseException as exc:  # handed to the calling thread
            failure.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=work, name="wasitrace-guest", daemon=True)
    worker.start()
    # Event.wait, not Thread.join: a KeyboardInterrupt inside join() can leave the thread
    # looking finished while it still runs.
    while not done.is_set():
        try:
            done.wait(0.2)
        except KeyboardInterrupt:
            log.debug("interrupt requested")
            interrupt.request()
    if failure:
        raise failure[0]
    return result[0]
