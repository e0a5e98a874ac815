"""The one list of operations, the typed protocol and the WIT package say the same thing."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from tracer.backend import Backend, Filesystem
from tracer.errors import ErrorCode
from tracer.operations import FILESYSTEM_OPERATIONS, OPERATIONS

WIT = Path(__file__).resolve().parent.parent / "wit" / "backend.wit"


def _protocol_methods(protocol: type) -> dict[str, list[str]]:
    return {
        name: [p for p in inspect.signature(fn).parameters if p != "self"]
        for name, fn in vars(protocol).items()
        if inspect.isfunction(fn) and not name.startswith("_")
    }


def _wit_functions() -> dict[str, list[str]]:
    text = WIT.read_text()
    body = text[text.index("interface operations") :]
    functions = {}
    for match in re.finditer(r"([a-z][a-z0-9-]*): func\(([^)]*)\)", body):
        params = [
            p.split(":")[0].strip().lstrip("%").replace("-", "_")
            for p in match.group(2).split(",")
            if p.strip()
        ]
        functions[match.group(1).replace("-", "_")] = params
    return functions


def test_backend_protocol_declares_exactly_the_listed_operations() -> None:
    expected = {op.name: list(op.params) for op in OPERATIONS}
    assert _protocol_methods(Backend) == expected


def test_filesystem_protocol_has_the_filesystem_operations_and_a_root() -> None:
    expected = {op.name: list(op.params) for op in FILESYSTEM_OPERATIONS}
    expected["root"] = []
    assert _protocol_methods(Filesystem) == expected


def test_wit_package_mirrors_the_operations() -> None:
    assert _wit_functions() == {op.name: list(op.params) for op in OPERATIONS}


def test_wit_error_codes_are_the_error_code_enum() -> None:
    text = WIT.read_text()
    block = text[text.index("enum error-code {") :]
    block = block[block.index("{") + 1 : block.index("}")]
    names = [n.strip() for n in block.split(",") if n.strip()]
    assert names == [code.value for code in ErrorCode]


def test_operation_codes_are_positions() -> None:
    assert [op.code for op in OPERATIONS] == list(range(len(OPERATIONS)))
