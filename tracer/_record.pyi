"""Types of the C extension tracer._record (tracer/_record.c)."""

from collections.abc import Callable, Sequence
from typing import Any

class Recording:
    pending: int
    n_stats: int
    pending_stat_values: int
    def __init__(
        self,
        tables: Any,
        flush: Callable[[], None],
        errors: dict[Any, int],
        wasi_error: type[BaseException],
        digest: Callable[[bytes], int],
        op_kinds: list[bytes],
        chunk_events: int,
        inline_bytes: int,
        max_stats: int,
        /,
    ) -> None: ...
    def take(self) -> tuple[bytes, int]: ...
    def take_stats(self) -> tuple[bytes, int]: ...
    def counts(self) -> list[int]: ...
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

class Recorder:
    __wrapped__: Callable[..., Any]
    call: Callable[..., Any]
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
