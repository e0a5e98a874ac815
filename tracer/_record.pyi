"""Types of the C extension tracer._record (tracer/_record.c)."""

from collections.abc import Callable, Sequence
from typing import Any

class Recording:
    events: int
    def __init__(
        self,
        fd: int,
        offset: int,
        errors: dict[Any, int],
        wasi_error: type[BaseException],
        op_kinds: list[bytes],
        chunk_events: int,
        chunk_bulk_bytes: int,
        inline_bytes: int,
        max_strings: int,
        max_stats: int,
        blob_window: int,
        threaded: bool,
        write_error: type[OSError],
        path: str,
        /,
    ) -> None: ...
    def record(
        self,
        op_code: int,
        args: Sequence[Any],
        result: Any,
        error_index: int | None,
        duration_us: int,
        /,
    ) -> None: ...
    def recorder(
        self,
        op_code: int,
        call: Callable[..., Any],
        params: tuple[str, ...],
        wrapped: Callable[..., Any],
        /,
    ) -> Recorder: ...
    def flush(self) -> None: ...
    def next_ids(self) -> tuple[int, int, int]: ...
    def finish(self) -> tuple[int, int, list[int]]: ...
    def counts(self) -> list[int]: ...

class Recorder:
    """A method for a class: called with the instance first, then the operation's arguments."""

    __wrapped__: Callable[..., Any]
    call: Callable[..., Any]
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
    def __get__(self, instance: object, owner: type | None = None) -> Any: ...
