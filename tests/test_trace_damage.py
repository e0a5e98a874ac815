"""Damaged and interrupted traces: read up to the damage, or refused with a TraceError."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracer.backend import Clock, DescriptorStat, DescriptorType
from tracer.errors import ErrorCode
from tracer.operations import BY_NAME
from tracer.trace import Event, GuestInfo, TraceError, TraceHeader, TraceWriter, open_trace

HEADER = TraceHeader(
    guest=GuestInfo("g.wasm", 10, "00" * 32, "preview1", "g.wasm"),
    argv=("g.wasm",),
    env=(),
    preopens=(),
    wasmtime_version="50.0.1",
    wasitrace_version="0.1.0",
    recorded_at="2024-05-01T12:00:00+00:00",
)
ROOT = Path(__file__).resolve().parent.parent


def record_mix(path: Path, n: int) -> None:
    """Events of every kind of value: paths, blobs reused across chunks, stats, errors."""
    rng = random.Random(7)
    blocks = [rng.randbytes(rng.choice((40, 600, 4096))) for _ in range(12)]
    with TraceWriter(path, HEADER) as writer:
        for i in range(n):
            pick = i % 5
            if pick == 0:
                writer.record(BY_NAME["read"].code, (5, 4096, i), rng.choice(blocks), None, 2000)
            elif pick == 1:
                args = (3, 0, f"dir/f{rng.randrange(40)}", 0, 1)
                writer.record(BY_NAME["open_at"].code, args, i, None, 3000)
            elif pick == 2:
                stat = DescriptorStat(1, i, DescriptorType.REGULAR_FILE, 1, i, i, None, i + 1)
                writer.record(BY_NAME["stat"].code, (5,), stat, None, 1000)
            elif pick == 3:
                writer.record(BY_NAME["clock_now"].code, (Clock.MONOTONIC,), i, None, 0)
            else:
                writer.record(BY_NAME["unlink_file_at"].code, (3, "x"), None, ErrorCode.ACCESS, 0)
        writer.close(0)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list[Event], int]:
    """The bytes of an intact trace, its events, and the offset of its first chunk."""
    path = tmp_path_factory.mktemp("sample") / "sample.wtrace"
    record_mix(path, 1200)
    with open_trace(path) as trace:
        assert trace.footer is not None and len(trace.footer.index) > 4
        return path.read_bytes(), list(trace), trace.footer.index[0].offset


def read_what_survives(path: Path) -> tuple[list[Event], bool, str | None, str | None]:
    """(events read, ended early, damage, error while reading); TraceError at open propagates."""
    events: list[Event] = []
    with open_trace(path) as trace:
        try:
            for event in trace:
                events.append(event)
        except TraceError as exc:
            return events, trace.ended_early, trace.damage, str(exc)
        return events, trace.ended_early, trace.damage, None


def assert_sentence(message: str) -> None:
    assert message.endswith(".") and "\n" not in message, message


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scratch") / "damaged.wtrace"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_cut_trace_reads_up_to_the_cut(
    sample: tuple[bytes, list[Event], int], scratch: Path, data: st.DataObject
) -> None:
    whole, original, first_chunk = sample
    cut = data.draw(st.integers(0, len(whole) - 1))
    scratch.write_bytes(whole[:cut])
    if cut < first_chunk:
        with pytest.raises(TraceError) as info:
            open_trace(scratch)
        assert_sentence(str(info.value))
        return
    events, ended_early, damage, error = read_what_survives(scratch)
    assert error is None  # without a footer every chunk was checked at open
    assert events == original[: len(events)]
    assert damage is not None
    assert_sentence(damage)
    assert ended_early or len(events) == len(original)
    if ended_early:
        assert f"after event #{len(events) - 1}" in damage or not events


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_flipped_bytes_are_detected_never_decoded_wrong(
    sample: tuple[bytes, list[Event], int], scratch: Path, data: st.DataObject
) -> None:
    whole, original, _ = sample
    damaged = bytearray(whole)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(whole) - 1))
        damaged[at] ^= data.draw(st.integers(1, 255))
    scratch.write_bytes(bytes(damaged))
    try:
        events, _, damage, error = read_what_survives(scratch)
    except TraceError as exc:
        assert_sentence(str(exc))
        return
    assert events == original[: len(events)]
    for message in (damage, error):
        if message is not None:
            assert_sentence(message)


def test_a_cut_at_a_chunk_boundary_says_after_which_event(
    sample: tuple[bytes, list[Event], int], scratch: Path
) -> None:
    whole, original, _ = sample
    scratch.write_bytes(whole)
    with open_trace(scratch) as trace:
        assert trace.footer is not None
        boundaries = [(e.offset, e.first_seq) for e in trace.footer.index]
    for offset, first_seq in boundaries[1:]:
        scratch.write_bytes(whole[:offset])
        with open_trace(scratch) as trace:
            assert trace.ended_early and len(trace) == first_seq
            assert trace.damage is not None
            assert f"ends early after event #{first_seq - 1}" in trace.damage
            assert "no footer" in trace.damage
            assert list(trace) == original[:first_seq]


def test_a_damaged_chunk_in_a_complete_trace_fails_when_reached(
    sample: tuple[bytes, list[Event], int], scratch: Path
) -> None:
    whole, original, _ = sample
    scratch.write_bytes(whole)
    with open_trace(scratch) as trace:
        assert trace.footer is not None
        third = trace.footer.index[2]
    damaged = bytearray(whole)
    damaged[third.offset + 20] ^= 0xFF
    scratch.write_bytes(bytes(damaged))
    events, ended_early, damage, error = read_what_survives(scratch)
    assert not ended_early
    assert events == original[: third.first_seq]
    assert error is not None and error == damage
    assert f"from #{third.first_seq}" in error and "checksum does not match" in error


def test_a_damaged_footer_falls_back_to_scanning(
    sample: tuple[bytes, list[Event], int], scratch: Path
) -> None:
    whole, original, _ = sample
    damaged = bytearray(whole)
    damaged[-30] ^= 0x01  # inside the footer's body
    scratch.write_bytes(bytes(damaged))
    events, ended_early, damage, error = read_what_survives(scratch)
    assert events == original and error is None
    assert ended_early and damage is not None and "footer" in damage


def test_a_trace_cut_inside_its_footer_has_every_event(
    sample: tuple[bytes, list[Event], int], scratch: Path
) -> None:
    whole, original, _ = sample
    scratch.write_bytes(whole[:-20])
    events, ended_early, damage, error = read_what_survives(scratch)
    assert events == original and error is None
    assert ended_early and damage is not None and "incomplete footer" in damage


def test_a_missing_trailer_still_finds_the_footer(
    sample: tuple[bytes, list[Event], int], scratch: Path
) -> None:
    whole, original, _ = sample
    scratch.write_bytes(whole[:-3])
    with open_trace(scratch) as trace:
        assert trace.footer is not None and trace.footer.exit_status == 0
        assert not trace.ended_early
        assert list(trace) == original


WRITER_SCRIPT = textwrap.dedent(
    """
    import sys
    from tracer.backend import DescriptorStat, DescriptorType
    from tracer.operations import OPERATIONS
    from tracer.trace import GuestInfo, TraceHeader, TraceWriter
    from tracer.tracing import TracingBackend

    class Inner:
        def read(self, fd, length, offset):
            return bytes([offset % 251]) * length

        def stat(self, fd):
            return DescriptorStat(1, fd, DescriptorType.REGULAR_FILE, 1, 0, None, None, None)

    for op in OPERATIONS:
        if not hasattr(Inner, op.name):
            setattr(Inner, op.name, lambda self, *args: None)

    header = TraceHeader(GuestInfo("g.wasm", 1, "00", "preview1", "g.wasm"), (), (), (),
                         "50.0.1", "0.1.0", "2024-05-01T12:00:00+00:00")
    backend = TracingBackend(Inner(), TraceWriter(sys.argv[1], header))
    i = 0
    while True:
        backend.read(3, 40, i)
        backend.stat(i)
        i += 1
    """
)


def test_a_writer_killed_mid_run_leaves_a_readable_trace_that_ended_early(
    tmp_path: Path,
) -> None:
    path = tmp_path / "killed.wtrace"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(path)], env=env)
    try:
        deadline = time.monotonic() + 30
        while not (path.exists() and path.stat().st_size > 200_000):
            assert process.poll() is None, "the writer process died on its own"
            assert time.monotonic() < deadline, "the writer process wrote too little"
            time.sleep(0.02)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    with open_trace(path) as trace:
        assert trace.ended_early and trace.footer is None
        assert trace.damage is not None and "ends early" in trace.damage
        n = len(trace)
        assert n > 1000
        events = list(trace)
    assert len(events) == n
    for i, event in enumerate(events):
        if i % 2 == 0:
            assert (event.op.name, event.args) == ("read", (3, 40, i // 2))
            assert event.result == bytes([(i // 2) % 251]) * 40
        else:
            assert (event.op.name, event.args) == ("stat", (i // 2,))
            assert event.result.inode == i // 2
