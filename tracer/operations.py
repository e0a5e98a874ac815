"""The one list of backend operations.

Everything that is generic over operations -- the tracing proxy, the replayer, the mount router,
the trace format's operation codes, `show` -- reads this list. `tracer.backend.Backend` declares
the same methods with types, and `wit/backend.wit` mirrors them; `tests/test_operations.py`
keeps the three in step. The position of an operation in `OPERATIONS` is its code in a trace,
so new operations are only ever appended.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Group(StrEnum):
    CLI = "cli"
    CLOCKS = "clocks"
    RANDOM = "random"
    STDIO = "stdio"
    FILESYSTEM = "filesystem"


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    params: tuple[str, ...]
    group: Group
    # Parameters that are descriptors (routed by `Mounts`, shown as `fd N`).
    descriptors: tuple[str, ...] = ()
    # The result is a new descriptor.
    returns_descriptor: bool = False

    @property
    def code(self) -> int:
        return OPERATION_CODES[self.name]


def _fs(name: str, *params: str, returns_descriptor: bool = False) -> Operation:
    return Operation(
        name,
        params,
        Group.FILESYSTEM,
        descriptors=tuple(p for p in params if p in ("fd", "new_fd")),
        returns_descriptor=returns_descriptor,
    )


OPERATIONS: tuple[Operation, ...] = (
    Operation("arguments", (), Group.CLI),
    Operation("environment", (), Group.CLI),
    Operation("preopens", (), Group.CLI),
    Operation("exit", ("status",), Group.CLI),
    Operation("clock_now", ("clock",), Group.CLOCKS),
    Operation("clock_resolution", ("clock",), Group.CLOCKS),
    Operation("sleep", ("duration",), Group.CLOCKS),
    Operation("random_bytes", ("length",), Group.RANDOM),
    Operation("read_stdin", ("length",), Group.STDIO),
    Operation("write_stdout", ("data",), Group.STDIO),
    Operation("write_stderr", ("data",), Group.STDIO),
    _fs("open_at", "fd", "path_flags", "path", "open_flags", "flags", returns_descriptor=True),
    _fs("read", "fd", "length", "offset"),
    _fs("write", "fd", "data", "offset"),
    _fs("append", "fd", "data"),
    _fs("stat", "fd"),
    _fs("stat_at", "fd", "path_flags", "path"),
    _fs("read_directory", "fd"),
    _fs("create_directory_at", "fd", "path"),
    _fs("remove_directory_at", "fd", "path"),
    _fs("unlink_file_at", "fd", "path"),
    _fs("rename_at", "fd", "old_path", "new_fd", "new_path"),
    _fs("symlink_at", "fd", "old_path", "new_path"),
    _fs("readlink_at", "fd", "path"),
    _fs("link_at", "fd", "old_path_flags", "old_path", "new_fd", "new_path"),
    _fs("set_size", "fd", "size"),
    _fs("set_times", "fd", "data_access_timestamp", "data_modification_timestamp"),
    _fs(
        "set_times_at",
        "fd",
        "path_flags",
        "path",
        "data_access_timestamp",
        "data_modification_timestamp",
    ),
    _fs("sync", "fd"),
    _fs("sync_data", "fd"),
    _fs("advise", "fd", "offset", "length", "advice"),
    _fs("close", "fd"),
)

OPERATION_CODES: dict[str, int] = {op.name: i for i, op in enumerate(OPERATIONS)}
BY_NAME: dict[str, Operation] = {op.name: op for op in OPERATIONS}
FILESYSTEM_OPERATIONS: tuple[Operation, ...] = tuple(
    op for op in OPERATIONS if op.group is Group.FILESYSTEM
)
