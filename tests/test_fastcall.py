"""The unchecked-trampoline path and the plain `define_func` path behave the same."""

from __future__ import annotations

import gc
import weakref

import pytest
import wasmtime

from tests.guestbuild import build
from tracer.backends.memory import MemoryBackend
from tracer.host.fastcall import Definitions, HostFunction
from tracer.runner import RunOptions, make_engine, run_module
from tracer.sandbox import Mount, Sandbox
from tracer.system import HostSystem

WAT = """
(module
  (import "host" "mix" (func $mix (param i32 i64 i32) (result i32)))
  (import "host" "fail" (func $fail (param i32) (result i32)))
  (import "host" "boom" (func $boom (param i32)))
  (func (export "call_mix") (param i32 i64 i32) (result i32)
    (call $mix (local.get 0) (local.get 1) (local.get 2)))
  (func (export "call_fail") (param i32) (result i32) (call $fail (local.get 0)))
  (func (export "call_boom") (call $boom (i32.const 1)))
)
"""


class Expected(Exception):
    pass


class Boom(Exception):
    pass


def _instance(
    plain: bool, seen: list[tuple[int, ...]]
) -> tuple[wasmtime.Store, wasmtime.Instance, Definitions]:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    linker = wasmtime.Linker(engine)

    def mix(a: int, b: int, c: int) -> int:
        seen.append((a, b, c))
        return (a + c) & 0xFFFFFFFF

    def fail(code: int) -> int:
        raise Expected(code)

    def boom(_: int) -> None:
        raise Boom("from the host")

    definitions = Definitions()
    definitions.define(
        linker,
        "host",
        [
            HostFunction("mix", "iIi", "i", mix),
            HostFunction("fail", "i", "i", fail),
            HostFunction("boom", "i", "", boom),
        ],
        expected=(Expected,),
        to_result=lambda exc: 1000 + exc.args[0],
        plain=plain,
    )
    module = wasmtime.Module(engine, WAT)
    return store, linker.instantiate(store, module), definitions


@pytest.mark.parametrize("plain", [False, True], ids=["unchecked", "plain"])
def test_arguments_arrive_unsigned_and_results_return(plain: bool) -> None:
    seen: list[tuple[int, ...]] = []
    store, instance, _defs = _instance(plain, seen)
    call_mix = instance.exports(store)["call_mix"]
    assert isinstance(call_mix, wasmtime.Func)
    result = call_mix(store, -1, -2, 7)
    assert seen == [(0xFFFFFFFF, 0xFFFFFFFFFFFFFFFE, 7)]
    assert result == 6  # (2**32 - 1 + 7) mod 2**32, read back as a signed i32


@pytest.mark.parametrize("plain", [False, True], ids=["unchecked", "plain"])
def test_expected_exceptions_become_results(plain: bool) -> None:
    store, instance, _defs = _instance(plain, [])
    call_fail = instance.exports(store)["call_fail"]
    assert isinstance(call_fail, wasmtime.Func)
    assert call_fail(store, 5) == 1005


@pytest.mark.parametrize("plain", [False, True], ids=["unchecked", "plain"])
def test_other_exceptions_trap_and_are_raised_from_the_export(plain: bool) -> None:
    store, instance, _defs = _instance(plain, [])
    call_boom = instance.exports(store)["call_boom"]
    assert isinstance(call_boom, wasmtime.Func)
    with pytest.raises(Boom, match="from the host"):
        call_boom(store)


@pytest.mark.parametrize("plain", [False, True], ids=["unchecked", "plain"])
def test_a_finished_run_frees_its_backend_and_store(plain: bool) -> None:
    # Plain host functions stay in wasmtime's module-level table until their store is deleted;
    # a host layer still holding that store kept the store, the layer and the backend alive for
    # good, and the store freed at interpreter exit crashed the process.
    engine = make_engine()
    module = wasmtime.Module.from_file(engine, str(build("bench_calls")))
    argv = ["bench_calls", "stat", "3"]
    backend = Sandbox(HostSystem(argv, []), [Mount("/data", MemoryBackend())])
    gone = weakref.ref(backend)
    gc.collect()
    stores = sum(isinstance(o, wasmtime.Store) for o in gc.get_objects())
    outcome = run_module(engine, module, backend, RunOptions(plain_calls=plain))
    assert outcome.exit_status == 0
    del backend
    gc.collect()
    assert gone() is None
    assert sum(isinstance(o, wasmtime.Store) for o in gc.get_objects()) == stores
