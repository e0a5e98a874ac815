"""Builds the C test guests in tests/guests/ to WASI preview 1 modules with ziglang, cached.

A guest `NAME.c` becomes `tests/guests/build/NAME-KEY/NAME.wasm`, where KEY hashes everything that
decides the output: the source, the shared headers, the compiler flags and the ziglang version.
So a build happens only when one of those changes, and the module's file name stays `NAME.wasm`
(which is what a guest sees as argv[0]).

Extra flags for one guest are written in its source, on a line of their own:

    // build-flags: -mexec-model=reactor

Two pytest processes may build at once: each compiles into its own temporary directory and
renames the result into place, so a reader never sees half a module.

Command line: `python -m tests.guestbuild [NAME...]` builds the named guests (all by default)
and prints the path of each module.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

GUESTS_DIR = Path(__file__).resolve().parent / "guests"
BUILD_DIR = GUESTS_DIR / "build"

COMMON_FLAGS: tuple[str, ...] = ("-target", "wasm32-wasi", "-O2", "-s")
FLAGS_MARKER = "// build-flags:"

# setjmp/longjmp need the exception-handling proposal. zig's clang still emits the legacy
# `try` encoding unless told otherwise, and wasmtime 50 only accepts the standard (exnref) one;
# zig's wasi-libc also lacks the definition of the `__c_longjmp` tag, which the guest supplies.
# What the `guest` fixture gives a test: a guest's name in, its compiled module out.
GuestFactory = Callable[[str], Path]

SJLJ_FLAGS: tuple[str, ...] = (
    "-mexception-handling",
    "-mllvm",
    "-wasm-enable-sjlj",
    "-mllvm",
    "-wasm-use-legacy-eh=false",
)


class GuestBuildError(RuntimeError):
    """A guest did not compile; the message carries the compiler's own output."""


def guest_names() -> list[str]:
    """Every guest in tests/guests/, by name (the C file's stem), sorted."""
    return sorted(p.stem for p in GUESTS_DIR.glob("*.c"))


def source_path(name: str) -> Path:
    path = GUESTS_DIR / f"{name}.c"
    if not path.is_file():
        raise GuestBuildError(f"no guest named {name!r}: {path} does not exist")
    return path


def extra_flags(source: str) -> tuple[str, ...]:
    """The flags a guest asks for with a `// build-flags:` line (see the module docstring)."""
    flags: list[str] = []
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith(FLAGS_MARKER):
            words = shlex.split(stripped[len(FLAGS_MARKER) :])
            for word in words:
                # A named set keeps long, fragile flag lists in one place.
                flags.extend(SJLJ_FLAGS if word == "@sjlj" else (word,))
    return tuple(flags)


@cache
def zig_version() -> str:
    return importlib.metadata.version("ziglang")


def _headers_digest() -> bytes:
    digest = hashlib.sha256()
    for header in sorted(GUESTS_DIR.glob("*.h")):
        digest.update(header.name.encode())
        digest.update(header.read_bytes())
    return digest.digest()


def cache_key(name: str) -> str:
    source = source_path(name).read_bytes()
    flags = COMMON_FLAGS + extra_flags(source.decode())
    digest = hashlib.sha256()
    for part in (source, _headers_digest(), "\0".join(flags).encode(), zig_version().encode()):
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()[:20]


def module_path(name: str) -> Path:
    """Where the built module for the current source of `name` lives (it may not exist yet)."""
    return BUILD_DIR / f"{name}-{cache_key(name)}" / f"{name}.wasm"


def build(name: str) -> Path:
    """The compiled module for guest `name`, compiling it only if the cache has no current copy."""
    target = module_path(name)
    if target.is_file():
        return target
    source = source_path(name)
    flags = COMMON_FLAGS + extra_flags(source.read_text())
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=BUILD_DIR))
    try:
        out = work / f"{name}.wasm"
        command = [sys.executable, "-m", "ziglang", "cc", *flags, str(source), "-o", str(out)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not out.is_file():
            raise GuestBuildError(
                f"building guest {name!r} failed (exit {result.returncode}):\n"
                f"$ {shlex.join(command)}\n{result.stdout}{result.stderr}"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        # Rename is atomic: a concurrent builder's identical module may win, which is fine.
        os.replace(out, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _remove_stale_builds(name, keep=target.parent)
    return target


def _remove_stale_builds(name: str, *, keep: Path) -> None:
    # Older builds of this guest are only dead weight; a process still using one keeps its
    # open file, and a process that builds it again gets a fresh copy.
    for old in BUILD_DIR.glob(f"{name}-*"):
        if old != keep and old.is_dir() and old.name[len(name) + 1 :].isalnum():
            shutil.rmtree(old, ignore_errors=True)


def build_all(names: Iterable[str] | None = None, *, jobs: int = 2) -> dict[str, Path]:
    """Builds several guests in parallel (zig itself is single-threaded per file)."""
    wanted = list(guest_names() if names is None else names)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return dict(zip(wanted, pool.map(build, wanted), strict=True))


def main(argv: list[str] | None = None) -> int:
    names = (sys.argv[1:] if argv is None else argv) or None
    try:
        built = build_all(names)
    except GuestBuildError as error:
        print(error, file=sys.stderr)
        return 1
    for path in built.values():
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
