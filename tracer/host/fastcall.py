"""Defining host functions on a `wasmtime.Linker`: the fast way and the plain way, one interface.

The fast way uses the C API's unchecked trampoline (`wasmtime_linker_define_func_unchecked`),
reached through the package's private `_ffi` bindings: wasmtime hands us a pointer to raw
16-byte value slots, we read the arguments and write the result in place. That costs well under
a microsecond, against about 10 us for `Linker.define_func`, which converts every value through
`Val`. It depends on private API of wasmtime 50, so it is confined to this module, tested against
the plain way (`tests/test_fastcall.py`), and `plain=True` switches it off.

Host functions take unsigned ints (i32 as 0..2**32-1, i64 as 0..2**64-1) and return an int
(the errno) or None for functions without results. An exception in `expected` is turned into a
result by `to_result`; any other exception traps the guest and is re-raised by wasmtime from the
export call (that is how `proc_exit` ends a run).
"""

from __future__ import annotations

import ctypes
import functools
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import wasmtime
import wasmtime._func as _wasmtime_func
from wasmtime import _ffi as ffi

_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF
# Enough 8-byte words for the widest preview 1 signature (path_open: 9 parameters), two words
# per 16-byte slot.
_WORDS = 2 * 16
_Slots = ctypes.c_int64 * _WORDS

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t
)
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)()  # a NULL function pointer


@dataclass(frozen=True)
class HostFunction:
    name: str
    params: str  # one letter a parameter: "i" for i32, "I" for i64
    results: str  # "" or "i"
    impl: Callable[..., int | None]


def _trap(exc: BaseException) -> int:
    # wasmtime-py re-raises this module-level exception from the export call that trapped.
    _wasmtime_func.LAST_EXCEPTION = exc  # type: ignore[assignment]
    trap = wasmtime.Trap("host function raised")._consume()
    address = ctypes.cast(trap, ctypes.c_void_p).value
    assert address is not None
    return address


@functools.cache
def _trampoline_code(name: str, params: str, results: str) -> Any:
    # The argument list is generated as source so that each trampoline reads exactly its own
    # slots with no loop or tuple building: this is the hottest code in the project. Compiled
    # once a process per function: compiling took half of a short guest's start-up.
    args = ", ".join(
        f"s[{2 * i}] & {'_U32' if kind == 'i' else '_U64'}" for i, kind in enumerate(params)
    )
    call = f"impl({args})"
    store = f"s[0] = {call}" if results else call
    source = f"""
def trampoline(env, caller, slots, count):
    s = slots_at.get(slots)
    if s is None:
        s = slots_at[slots] = _Slots.from_address(slots)
    try:
        {store}
    except expected as exc:
        s[0] = to_result(exc)
    except BaseException as exc:
        return _trap(exc)
    return 0
"""
    return compile(source, f"<trampoline {name}>", "exec")


def _make_trampoline(
    fn: HostFunction,
    expected: tuple[type[BaseException], ...],
    to_result: Callable[[BaseException], int],
    slots_at: dict[int, Any],
) -> Callable[[int, int, int, int], int]:
    namespace: dict[str, Any] = {
        "impl": fn.impl,
        "expected": expected,
        "to_result": to_result,
        "slots_at": slots_at,
        "_Slots": _Slots,
        "_U32": _U32,
        "_U64": _U64,
        "_trap": _trap,
    }
    exec(_trampoline_code(fn.name, fn.params, fn.results), namespace)
    trampoline: Callable[[int, int, int, int], int] = namespace["trampoline"]
    return trampoline


# Function types by engine, then by signature. The C API ties a function type to the first
# engine it is used with (using it with another aborts the process), so one cache an engine;
# building one through the package's Python wrappers cost ~90 us, 4 ms of a guest's start-up.
_FUNC_TYPES: weakref.WeakKeyDictionary[wasmtime.Engine, dict[tuple[str, str], wasmtime.FuncType]]
_FUNC_TYPES = weakref.WeakKeyDictionary()


def _func_type(engine: wasmtime.Engine, params: str, results: str) -> wasmtime.FuncType:
    types = _FUNC_TYPES.get(engine)
    if types is None:
        types = _FUNC_TYPES.setdefault(engine, {})
    func_type = types.get((params, results))
    if func_type is None:
        kinds = {"i": wasmtime.ValType.i32(), "I": wasmtime.ValType.i64()}
        func_type = wasmtime.FuncType([kinds[k] for k in params], [kinds[k] for k in results])
        types[params, results] = func_type
    return func_type


class Definitions:
    """Keeps the ctypes callbacks alive as long as the linker can call them."""

    def __init__(self) -> None:
        self._keep: list[Any] = []
        self._slots_at: dict[int, Any] = {}

    def define(
        self,
        linker: wasmtime.Linker,
        module: str,
        functions: list[HostFunction],
        *,
        expected: tuple[type[BaseException], ...],
        to_result: Callable[[BaseException], int],
        plain: bool = False,
    ) -> None:
        module_b = module.encode()
        module_buf = ctypes.create_string_buffer(module_b)
        for fn in functions:
            # The calls below borrow its pointer; the cache keeps it alive.
            func_type = _func_type(linker.engine, fn.params, fn.results)
            if plain:
                linker.define_func(module, fn.name, func_type, _plain(fn, expected, to_result))
                continue
            callback = _CALLBACK(_make_trampoline(fn, expected, to_result, self._slots_at))
            self._keep.append(callback)
            name_b = fn.name.encode()
            error = ffi.wasmtime_linker_define_func_unchecked(
                linker.ptr(),
                module_buf,
                len(module_b),
                ctypes.create_string_buffer(name_b),
                len(name_b),
                func_type.ptr(),
                ctypes.cast(callback, ffi.wasmtime_func_unchecked_callback_t),
                None,
                _NO_FINALIZER,
            )
            if error:
                raise wasmtime.WasmtimeError._from_ptr(error)


def _plain(
    fn: HostFunction,
    expected: tuple[type[BaseException], ...],
    to_result: Callable[[BaseException], int],
) -> Callable[..., int | None]:
    masks = [_U32 if k == "i" else _U64 for k in fn.params]
    impl = fn.impl

    def call(*args: int) -> int | None:
        try:
            return impl(*(a & m for a, m in zip(args, masks, strict=True)))
        except expected as exc:
            return to_result(exc)

    return call
