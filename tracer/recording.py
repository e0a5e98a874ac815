"""What a trace remembers of how its guest was run, in one place.

`run_header` makes the header of a new recording (the guest, its arguments, environment,
preopens and the run options); `recorded_options` gives back the options a replay must use.
The CLI, the library API (`replay.api`) and the TUI all record and replay through these.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tracer.runner import RunOptions
from tracer.sandbox import Mount
from tracer.trace import Preopen, TraceHeader


def run_header(
    guest: str | Path,
    argv: Sequence[str],
    env: Sequence[tuple[str, str]],
    mounts: Sequence[Mount],
    options: RunOptions,
) -> TraceHeader:
    return TraceHeader.for_guest(
        guest,
        "preview1",
        list(argv),
        list(env),
        [Preopen(m.guest_path, m.kind, m.source or "memory") for m in mounts],
        extra={
            "invoke": options.invoke,
            "invoke_args": list(options.invoke_args),
            "trap_unknown_imports": options.trap_unknown_imports,
        },
    )


def recorded_options(header: TraceHeader, *, plain_calls: bool = False) -> RunOptions:
    extra = header.extra
    invoke = extra.get("invoke")
    return RunOptions(
        invoke=str(invoke) if invoke is not None else None,
        invoke_args=tuple(str(a) for a in extra.get("invoke_args") or ()),
        trap_unknown_imports=bool(extra.get("trap_unknown_imports")),
        plain_calls=plain_calls,
    )
