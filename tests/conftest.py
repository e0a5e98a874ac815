"""Shared pytest fixtures: compiled test guests, built once per session (and cached on disk)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# The tests import their helpers as `tests.<module>` and start `python -m tests.reference`, both
# of which need the repository root importable whichever way pytest was started.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests import guestbuild  # noqa: E402 -- needs the path set up above
from tests.guestbuild import GuestFactory  # noqa: E402


@pytest.fixture(scope="session")
def guest() -> GuestFactory:
    """`guest(name)` is the compiled module of tests/guests/NAME.c, built on first use."""
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = guestbuild.build(name)
        return built[name]

    return get


NATIVE_BUILT = importlib.util.find_spec("tracer._record") is not None


@pytest.fixture(params=["native", "python"])
def recorder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test once per recording path: the C one (tracer._record) and the Python one."""
    if request.param == "native":
        if not NATIVE_BUILT:
            pytest.skip("tracer._record is not built")
        monkeypatch.delenv("WASITRACE_PURE_PYTHON", raising=False)
    else:
        monkeypatch.setenv("WASITRACE_PURE_PYTHON", "1")
    return str(request.param)
