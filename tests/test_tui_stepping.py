"""The stepper (tui/stepping.py): pauses before each call and obeys step, continue, run, abort."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import pytest

from tracer.backend import DescriptorFlags, OpenFlags
from tracer.backends.memory import MemoryBackend
from tracer.errors import ErrorCode, WasiError
from tracer.render import parse_filter
from tracer.sandbox import Mount, Sandbox
from tracer.system import HostSystem
from tracer.trace.reader import Event
from tui.stepping import (
    Abort,
    ContinueUntil,
    Pending,
    RunToEnd,
    Step,
    Stepper,
    SteppingAborted,
)

TIMEOUT = 5


def sandbox() -> Sandbox:
    return Sandbox(HostSystem(["guest"], []), [Mount("/", MemoryBackend(), kind="memory")])


class Guest:
    """Runs `script(backend)` in a thread, as wasmtime would run a guest, and watches it."""

    def __init__(self, script: Callable[[Any], None]) -> None:
        self.log: list[Event] = []
        self.pauses: list[Pending] = []
        self.paused = threading.Semaphore(0)
        self.stepper = Stepper(sandbox(), on_pause=self._paused, on_call=self.log.append)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(script,), daemon=True)
        self.thread.start()

    def _paused(self, pending: Pending) -> None:
        self.pauses.append(pending)
        self.paused.release()

    def _run(self, script: Callable[[Any], None]) -> None:
        try:
            script(self.stepper)
        except BaseException as exc:
            self.error = exc

    def wait_pause(self) -> Pending:
        assert self.paused.acquire(timeout=TIMEOUT), "the guest did not pause"
        return self.pauses[-1]

    def join(self) -> None:
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive(), "the guest did not finish"


def five_calls(b: Any) -> None:
    b.arguments()
    fd = b.open_at(3, 0, "a.txt", OpenFlags.CREATE, DescriptorFlags.WRITE)
    b.write(fd, memoryview(bytearray(b"hello")), 0)
    b.close(fd)
    b.exit(0)


def test_the_guest_pauses_before_its_first_call_and_each_step_makes_one() -> None:
    guest = Guest(five_calls)
    first = guest.wait_pause()
    assert (first.seq, first.op.name) == (0, "arguments")
    assert guest.log == []
    guest.stepper.command(Step())
    second = guest.wait_pause()
    assert (second.seq, second.op.name, second.args) == (1, "open_at", (3, 0, "a.txt", 1, 2))
    assert [e.op.name for e in guest.log] == ["arguments"]
    assert guest.log[0].result == ["guest"]
    guest.stepper.command(RunToEnd())
    guest.join()
    assert [e.seq for e in guest.log] == [0, 1, 2, 3, 4]


def test_continue_stops_after_the_first_call_that_matches_the_breakpoint() -> None:
    guest = Guest(five_calls)
    guest.wait_pause()
    guest.stepper.command(ContinueUntil(parse_filter("op=write")))
    paused = guest.wait_pause()
    assert guest.log[-1].op.name == "write"
    assert paused.op.name == "close"
    guest.stepper.command(RunToEnd())
    guest.join()


def test_a_breakpoint_sees_the_outcome_so_error_filters_work() -> None:
    def script(b: Any) -> None:
        with contextlib.suppress(WasiError):
            b.stat_at(3, 0, "missing")
        b.exit(1)

    guest = Guest(script)
    guest.wait_pause()
    guest.stepper.command(ContinueUntil(parse_filter("error=no-entry")))
    paused = guest.wait_pause()
    assert paused.op.name == "exit"
    assert guest.log[-1].error is ErrorCode.NO_ENTRY
    guest.stepper.command(RunToEnd())
    guest.join()


def test_abort_raises_in_the_guest_instead_of_making_the_call() -> None:
    guest = Guest(five_calls)
    guest.wait_pause()
    guest.stepper.command(Step())
    guest.wait_pause()
    guest.stepper.command(Abort())
    guest.join()
    assert isinstance(guest.error, SteppingAborted)
    assert guest.error.seq == 1
    assert [e.op.name for e in guest.log] == ["arguments"]


def test_abort_while_running_stops_at_the_next_call() -> None:
    go_on = threading.Event()

    def script(b: Any) -> None:
        b.arguments()
        go_on.wait(TIMEOUT)
        b.environment()

    guest = Guest(script)
    guest.wait_pause()
    guest.stepper.command(RunToEnd())
    guest.stepper.abort()
    go_on.set()
    guest.join()
    assert isinstance(guest.error, SteppingAborted)


def test_failed_calls_are_logged_with_their_error_and_raised_to_the_guest() -> None:
    guest = Guest(lambda b: b.read(99, 10, 0))
    guest.wait_pause()
    guest.stepper.command(RunToEnd())
    guest.join()
    assert isinstance(guest.error, WasiError) and guest.error.code is ErrorCode.BAD_DESCRIPTOR
    assert guest.log[0].error is ErrorCode.BAD_DESCRIPTOR and guest.log[0].result is None


def test_data_passed_as_a_view_of_guest_memory_is_logged_as_it_was() -> None:
    guest = Guest(five_calls)
    guest.wait_pause()
    guest.stepper.command(RunToEnd())
    guest.join()
    write = guest.log[2]
    assert write.args[1] == b"hello" and type(write.args[1]) is bytes


def test_keyword_calls_work_and_wrong_calls_fail_as_python_would() -> None:
    stepper = Stepper(sandbox())
    stepper.command(RunToEnd())
    backend: Any = stepper
    fd = backend.open_at(3, 0, path="k.txt", open_flags=OpenFlags.CREATE, flags=2)
    assert backend.write(fd, data=b"x", offset=0) == 1
    with pytest.raises(TypeError, match="missing argument 'offset'"):
        backend.write(fd, b"x")
    with pytest.raises(TypeError, match="unexpected"):
        backend.close(fd, bogus=1)


def test_a_stepper_needs_a_whole_backend() -> None:
    with pytest.raises(TypeError, match="has no 'arguments'"):
        Stepper(object())  # type: ignore[arg-type]
