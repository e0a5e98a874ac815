"""`wasitrace run` on small hand-written guests: exit statuses, stdio, bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import wasmtime

WRITE_AND_EXIT = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "out\\00\\ff\\n")
  (data (i32.const 200) "err!")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 0) (i32.const 200))
    (i32.store (i32.const 4) (i32.const 4))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $proc_exit (i32.const 42)))
)
"""

TRAP = '(module (memory (export "memory") 1) (func (export "_start") unreachable))'
SPIN = '(module (memory (export "memory") 1) (func (export "_start") (loop (br 0))))'
UNKNOWN_IMPORT = """
(module
  (import "env" "mystery" (func $m))
  (import "other" "thing" (func $t))
  (memory (export "memory") 1)
  (func (export "_start")))
"""
UNKNOWN_IMPORT_CALLED = """
(module
  (import "env" "mystery" (func $m))
  (memory (export "memory") 1)
  (func (export "_start") (call $m)))
"""
REACTOR = """
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 0))
  (func (export "_initialize") (global.set $g (i32.const 5)))
  (func (export "answer") (call $proc_exit (i32.add (global.get $g) (i32.const 2)))))
"""


def _guest(tmp_path: Path, name: str, wat: str) -> Path:
    path = tmp_path / f"{name}.wasm"
    path.write_bytes(wasmtime.wat2wasm(wat))
    return path


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "tracer.cli", "run", *args],
        capture_output=True,
        timeout=timeout,
    )


def _one_line(stderr: bytes) -> str:
    text = stderr.decode()
    assert "Traceback" not in text
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_stdout_stderr_and_exit_status_pass_through_byte_for_byte(tmp_path: Path) -> None:
    result = _run(str(_guest(tmp_path, "w", WRITE_AND_EXIT)))
    assert result.stdout == b"out\x00\xff\n"
    assert result.stderr == b"err!"
    assert result.returncode == 42


def test_a_trap_is_one_line_and_status_134(tmp_path: Path) -> None:
    result = _run(str(_guest(tmp_path, "t", TRAP)))
    assert result.returncode == 134
    assert "trapped" in _one_line(result.stderr)


def test_debug_adds_the_wasm_backtrace_to_a_trap(tmp_path: Path) -> None:
    result = _run("--debug", str(_guest(tmp_path, "t", TRAP)))
    assert result.returncode == 134
    assert "wasm backtrace" in result.stderr.decode()


def test_a_file_that_is_not_wasm_is_refused_in_one_line(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.wasm"
    bogus.write_text("hello")
    result = _run(str(bogus))
    assert result.returncode == 126
    assert "not a WebAssembly module" in _one_line(result.stderr)


def test_a_component_is_refused_in_one_line(tmp_path: Path) -> None:
    component = tmp_path / "c.wasm"
    component.write_bytes(b"\0asm\x0d\x00\x01\x00")
    result = _run(str(component))
    assert result.returncode == 126
    assert "component" in _one_line(result.stderr)


def test_a_truncated_module_is_refused_in_one_line(tmp_path: Path) -> None:
    good = wasmtime.wat2wasm(WRITE_AND_EXIT)
    cut = tmp_path / "cut.wasm"
    cut.write_bytes(bytes(good)[: len(good) // 2])
    result = _run(str(cut))
    assert result.returncode == 126
    assert "not a valid WebAssembly module" in _one_line(result.stderr)


def test_a_missing_guest_file_is_refused_in_one_line(tmp_path: Path) -> None:
    result = _run(str(tmp_path / "absent.wasm"))
    assert result.returncode == 126
    assert "does not exist" in _one_line(result.stderr)


def test_a_missing_dir_is_refused_in_one_line(tmp_path: Path) -> None:
    result = _run(
        "--dir", f"{tmp_path / 'nope'}::/data", str(_guest(tmp_path, "w", WRITE_AND_EXIT))
    )
    assert result.returncode == 126
    assert "does not exist" in _one_line(result.stderr)


def test_an_unknown_option_is_a_usage_error_in_one_line(tmp_path: Path) -> None:
    result = _run("--frobnicate", str(_guest(tmp_path, "w", WRITE_AND_EXIT)))
    assert result.returncode == 2
    assert "--frobnicate" in _one_line(result.stderr)


def test_unknown_imports_are_named(tmp_path: Path) -> None:
    result = _run(str(_guest(tmp_path, "u", UNKNOWN_IMPORT)))
    assert result.returncode == 126
    line = _one_line(result.stderr)
    assert "env::mystery" in line and "other::thing" in line
    assert "--trap-unknown-imports" in line


def test_trap_unknown_imports_runs_until_one_is_called(tmp_path: Path) -> None:
    assert (
        _run("--trap-unknown-imports", str(_guest(tmp_path, "u", UNKNOWN_IMPORT))).returncode == 0
    )
    called = _run("--trap-unknown-imports", str(_guest(tmp_path, "c", UNKNOWN_IMPORT_CALLED)))
    assert called.returncode == 134


def test_a_reactor_needs_invoke_and_runs_initialize_first(tmp_path: Path) -> None:
    guest = _guest(tmp_path, "r", REACTOR)
    refused = _run(str(guest))
    assert refused.returncode == 126
    assert "--invoke" in _one_line(refused.stderr)
    assert _run("--invoke", "answer", str(guest)).returncode == 7


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_stops_a_guest_that_spins_without_host_calls(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracer.cli", "run", str(_guest(tmp_path, "s", SPIN))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(2.0)
    os.kill(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert "interrupted" in _one_line(stderr)
