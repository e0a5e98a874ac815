"""The non-filesystem inputs of a live run: arguments, environment, clocks, randomness, stdio.

`HostSystem` serves them from the real process. It is one half of `tracer.sandbox.Sandbox`;
the other half is the mounted filesystems.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Protocol

from tracer.backend import Clock
from tracer.errors import from_os_error


class System(Protocol):
    def arguments(self) -> list[str]: ...

    def environment(self) -> list[tuple[str, str]]: ...

    def exit(self, status: int) -> None: ...

    def clock_now(self, clock: Clock) -> int: ...

    def clock_resolution(self, clock: Clock) -> int: ...

    def sleep(self, duration: int) -> None: ...

    def random_bytes(self, length: int) -> bytes: ...

    def read_stdin(self, length: int) -> bytes: ...

    def write_stdout(self, data: bytes) -> None: ...

    def write_stderr(self, data: bytes) -> None: ...


_CLOCKS: dict[str, Callable[[], int]] = {
    Clock.REALTIME: time.time_ns,
    Clock.MONOTONIC: time.monotonic_ns,
    Clock.PROCESS_CPUTIME: time.process_time_ns,
    Clock.THREAD_CPUTIME: time.thread_time_ns,
}

_CLOCK_IDS: dict[str, int] = {
    Clock.REALTIME: time.CLOCK_REALTIME,
    Clock.MONOTONIC: time.CLOCK_MONOTONIC,
    Clock.PROCESS_CPUTIME: time.CLOCK_PROCESS_CPUTIME_ID,
    Clock.THREAD_CPUTIME: time.CLOCK_THREAD_CPUTIME_ID,
}


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except OSError as exc:
            raise from_os_error(exc) from exc
        view = view[written:]


class HostSystem:
    """Arguments and environment as given; clocks, randomness and stdio of this process."""

    def __init__(
        self,
        args: list[str],
        env: list[tuple[str, str]],
        *,
        stdin_fd: int = 0,
        stdout_fd: int = 1,
        stderr_fd: int = 2,
    ) -> None:
        self._args = list(args)
        self._env = list(env)
        self._stdin_fd = stdin_fd
        self._stdout_fd = stdout_fd
        self._stderr_fd = stderr_fd

    def arguments(self) -> list[str]:
        return list(self._args)

    def environment(self) -> list[tuple[str, str]]:
        return list(self._env)

    def exit(self, status: int) -> None:
        pass

    def clock_now(self, clock: Clock) -> int:
        return _CLOCKS[clock]()

    def clock_resolution(self, clock: Clock) -> int:
        return max(1, round(time.clock_getres(_CLOCK_IDS[clock]) * 1e9))

    def sleep(self, duration: int) -> None:
        if duration > 0:
            time.sleep(duration / 1e9)

    def random_bytes(self, length: int) -> bytes:
        return os.urandom(length)

    def read_stdin(self, length: int) -> bytes:
        try:
            return os.read(self._stdin_fd, length)
        except OSError as exc:
            raise from_os_error(exc) from exc

    def write_stdout(self, data: bytes) -> None:
        _write_all(self._stdout_fd, data)

    def write_stderr(self, data: bytes) -> None:
        _write_all(self._stderr_fd, data)
