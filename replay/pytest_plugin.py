"""The pytest plugin: a guest's recorded trace is a regression fixture that new builds must match.

Mark a test, and the plugin runs the guest against the test's trace,
`traces/<test module>/<test name>.wtrace` beside the test file; the `wasitrace_guest` fixture gives
the test the `RunResult`, so it can assert on the output as well::

    @pytest.mark.wasitrace(guest="build/catalog.wasm", mem={"/data": "data"})
    def test_catalog(wasitrace_guest):
        assert b"47 words" in wasitrace_guest.stdout

A guest that departs from its trace fails the test with the divergence report. What happens when
a trace is missing or different is the record mode, `--wasitrace-record-mode` (see `RecordMode`);
the default `none` only replays, which is what CI wants.

Marker keywords (each may also come from the `wasitrace_config` fixture, which users override
like pytest-recording's `vcr_config`; markers on a module or class merge with the test's own):

    guest                the .wasm file (relative to `guest_dir`)
    args, argv0          the guest's arguments; argv[0] is the file name unless `argv0` is given
    env                  the environment, a dict or a list of (name, value) pairs
    dirs                 {guest path: host directory}: served as is, and the guest may change it
    mem                  {guest path: host directory or None}: an in-memory copy, or empty
    stdin                the guest's stdin: bytes, or a file (relative to `data_dir`)
    exit_status          how the guest must end (default 0); None accepts any ending, a trap too
    invoke, trap_unknown_imports   as the `wasitrace` command's options of the same names

`wasitrace_config` also sets `guest_dir` and `data_dir` (where relative paths are found; both
default to the test file's directory), `traces_dir` (default `traces` beside the test file) and
`allow_different_guest` (default True: a trace exists to check new builds of its guest).

Replay serves the guest everything from the trace, so it never reads `dirs`, `mem` or `stdin`;
the recorded arguments, environment and mount points are compared with the test's instead, and a
test that now gives different ones is treated like a changed trace.

Loaded by the `pytest11` entry point `wasitrace`, or explicitly with `-p replay.pytest_plugin`.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn

import pytest

from replay.api import (
    RunResult,
    WasitraceError,
    host_directory,
    memory_directory,
    record_guest,
    replay_trace,
)
from tracer.runner import RunOptions
from tracer.sandbox import Mount
from tracer.trace import TraceError, open_trace

MARKER = "wasitrace"
OPTION = "--wasitrace-record-mode"


class RecordMode(StrEnum):
    """When the plugin records a trace rather than replaying it (vcrpy's modes, for whole runs).

    none     replay only; a missing trace fails the test, naming the command that records it.
    once     record a missing trace; replay an existing one (a divergence fails the test).
    new      as once, and when a replay diverges, or the test now gives the guest other
             arguments, environment or mount points, record the trace again and pass; the
             terminal summary lists every trace so re-recorded. Traces that still match are left
             untouched, so a commit shows only the traces whose behaviour changed.
    all      record every trace, replacing the old one only once the new recording has ended.
    rewrite  delete every trace first, then record it.
    """

    NONE = "none"
    ONCE = "once"
    NEW = "new"
    ALL = "all"
    REWRITE = "rewrite"

    @classmethod
    def parse(cls, value: str) -> RecordMode:
        """The mode named `value`; the error lists the valid names (used by the option parser)."""
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(mode.value for mode in cls)
            raise argparse.ArgumentTypeError(
                f"{value!r} is not a wasitrace record mode; use one of {valid}."
            ) from None


SPEC_KEYS = (
    "guest",
    "args",
    "argv0",
    "env",
    "dirs",
    "mem",
    "stdin",
    "exit_status",
    "invoke",
    "trap_unknown_imports",
)
CONFIG_KEYS = ("guest_dir", "data_dir", "traces_dir", "allow_different_guest")


@dataclass
class _Spec:
    """A marked test's guest and inputs, with every relative path resolved."""

    guest: Path
    args: list[str]
    argv0: str
    env: list[tuple[str, str]]
    dirs: dict[str, Path]
    mem: dict[str, Path | None]
    stdin: bytes | Path | None
    exit_status: int | None
    options: RunOptions
    allow_different_guest: bool

    def recorded_form(self) -> tuple[list[str], list[tuple[str, str]], list[tuple[str, str]]]:
        """argv, environment and (mount point, backend kind) as a trace header records them."""
        mounts = [(g, "hostdir") for g in self.dirs] + [(g, "memory") for g in self.mem]
        return [self.argv0, *self.args], list(self.env), mounts

    def mounts(self) -> list[Mount]:
        made = [host_directory(g, h) for g, h in self.dirs.items()]
        return made + [memory_directory(g, h) for g, h in self.mem.items()]


@dataclass
class _Session:
    """What this session recorded, for the terminal summary."""

    recorded: list[tuple[str, Path, str]] = field(default_factory=list)


_SESSION = pytest.StashKey[_Session]()
_FAILURE = pytest.StashKey[str]()


# -- hooks ---------------------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wasitrace", "wasitrace: guest traces as regression fixtures")
    group.addoption(
        OPTION,
        dest="wasitrace_record_mode",
        type=RecordMode.parse,
        default=RecordMode.NONE.value,
        metavar="MODE",
        help="when to record guest traces: none (replay only, the default), once (record "
        "missing traces), new (also re-record traces the guest departs from), all (record "
        "every trace), rewrite (delete every trace, then record it)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(guest=..., args=[...], env={{...}}, dirs={{...}}, mem={{...}}): run a WASI "
        "guest against its recorded trace (see replay.pytest_plugin)",
    )
    config.stash[_SESSION] = _Session()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    # The guest runs while fixtures are set up, but a guest that departs from its trace is the
    # test's failure, not a broken fixture: so it is reported here, before the test body runs.
    failure = item.stash.get(_FAILURE, None)
    if failure is not None:
        pytest.fail(failure, pytrace=False)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    session = config.stash.get(_SESSION, None)
    if session is None or not session.recorded:
        return
    terminalreporter.section("wasitrace")
    for nodeid, path, what in session.recorded:
        terminalreporter.write_line(f"{what} {_shown(path, config.rootpath)} ({nodeid})")


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def wasitrace_record_mode(request: pytest.FixtureRequest) -> RecordMode:
    """The record mode of this session, from --wasitrace-record-mode."""
    mode: RecordMode = request.config.getoption("wasitrace_record_mode")
    return mode


@pytest.fixture
def wasitrace_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Defaults for every marked test; override it to change them (see the module docstring)."""
    return _defaults(request.path)


@pytest.fixture
def wasitrace_guest(
    request: pytest.FixtureRequest,
    wasitrace_config: Mapping[str, Any],
    wasitrace_record_mode: RecordMode,
) -> RunResult:
    """The marked guest's run against its trace (recorded or replayed, by the record mode)."""
    node: pytest.Item = request.node
    if _FAILURE in node.stash:
        del node.stash[_FAILURE]  # left from an earlier run of the same item (a rerun)
    config = {**_defaults(request.path), **wasitrace_config}
    for key, value in _marked(node).items():
        config[key] = value
    spec = _spec(config, node.nodeid)
    path = _trace_path(config, request)
    run = _Run(spec, path, wasitrace_record_mode, node.nodeid, request.config)
    result = run.result()
    if run.failure is None:
        run.check_ending(result)
    for stream, data in (("stdout", result.stdout), ("stderr", result.stderr)):
        if data:
            node.add_report_section("setup", f"guest {stream}", data.decode(errors="replace"))
    if run.failure is not None:
        node.stash[_FAILURE] = run.failure
    for what in run.recorded:
        request.config.stash[_SESSION].recorded.append((node.nodeid, path, what))
    return result


@pytest.fixture(autouse=True)
def _wasitrace_marked(request: pytest.FixtureRequest) -> None:
    """A marked test runs its guest even if it does not ask for the result."""
    if request.node.get_closest_marker(MARKER) is not None:
        request.getfixturevalue("wasitrace_guest")


# -- one run -------------------------------------------------------------------------------------
class _Failed(Exception):
    pass


class _Run:
    """Records or replays one test's trace as the record mode says, and notes what went wrong."""

    def __init__(
        self, spec: _Spec, path: Path, mode: RecordMode, nodeid: str, config: pytest.Config
    ) -> None:
        self.spec = spec
        self.path = path
        self.mode = mode
        self.nodeid = nodeid
        self.rootpath = config.rootpath
        self.failure: str | None = None
        self.recorded: list[str] = []

    def fail(self, message: str) -> None:
        if self.failure is None:
            self.failure = message

    def result(self) -> RunResult:
        try:
            return self._decide()
        except WasitraceError as exc:
            self.fail(str(exc))
        except _Failed:
            pass
        # The test body will not run (it fails first), so nothing reads this placeholder.
        return RunResult(b"", b"", None, None, self.path, recorded=False)

    def _decide(self) -> RunResult:
        mode, path = self.mode, self.path
        if mode is RecordMode.REWRITE:
            path.unlink(missing_ok=True)
            return self._record("recorded", atomic=False)
        if mode is RecordMode.ALL:
            return self._record("recorded", atomic=True)
        if not path.exists():
            if mode is RecordMode.NONE:
                self.fail(
                    f"The trace {self._shown()} does not exist, and {OPTION} is none (replay "
                    f"only). Record it by running, in {self.rootpath}:\n"
                    f"  {self._command(RecordMode.ONCE)}"
                )
                raise _Failed
            return self._record("recorded", atomic=False)
        changed = self._changed_inputs()
        if changed is not None:
            if mode is RecordMode.NEW:
                return self._record(f"re-recorded ({changed})", atomic=True)
            self.fail(
                f"The trace {self._shown()} was recorded with other inputs: {changed}. "
                f"Record it again by running, in {self.rootpath}:\n"
                f"  {self._command(RecordMode.NEW)}"
            )
            raise _Failed
        result = replay_trace(
            path, guest=self.spec.guest, allow_different_guest=self.spec.allow_different_guest
        )
        if result.divergence is None:
            return result
        if mode is RecordMode.NEW:
            return self._record(
                f"re-recorded (diverged at event #{result.divergence.seq})", atomic=True
            )
        self.fail(self._divergence_report(result))
        return result

    def _record(self, what: str, *, atomic: bool) -> RunResult:
        spec = self.spec
        result = record_guest(
            spec.guest,
            spec.args,
            spec.env,
            spec.mounts(),
            self.path,
            stdin=spec.stdin,
            options=spec.options,
            argv0=spec.argv0,
            atomic=atomic,
        )
        self.recorded.append(what)
        return result

    def _changed_inputs(self) -> str | None:
        """How the test's argv, environment or mount points differ from the recorded ones."""
        try:
            with open_trace(self.path) as trace:
                header = trace.header
        except TraceError as exc:
            raise WasitraceError(str(exc)) from None
        argv, env, mounts = self.spec.recorded_form()
        recorded_mounts = [(p.guest_path, p.backend) for p in header.preopens]
        differences = []
        if list(header.argv) != argv:
            differences.append(f"arguments {list(header.argv)}, now {argv}")
        if list(header.env) != env:
            differences.append(f"environment {_env(header.env)}, now {_env(env)}")
        if recorded_mounts != mounts:
            differences.append(f"mounts {_mounts(recorded_mounts)}, now {_mounts(mounts)}")
        return "; ".join(differences) or None

    def check_ending(self, result: RunResult) -> None:
        expected = self.spec.exit_status
        if expected is None:
            return
        if result.trap is not None:
            self.fail(
                f"The guest trapped: {result.trap}. (The test expects exit status {expected}; "
                "mark it with exit_status=None to accept any ending.)"
            )
        elif result.exit_status != expected:
            self.fail(
                f"The guest ended with exit status {result.exit_status}, where the test expects "
                f"{expected} (exit_status= in the marker)."
            )

    def _divergence_report(self, result: RunResult) -> str:
        assert result.divergence is not None
        lines = [result.divergence.render().rstrip("\n"), ""]
        if result.damage:
            lines.append(result.damage)
        lines.append(f"  trace  {self._shown()}")
        lines.append(f"  guest  {_shown(self.spec.guest, self.rootpath)}")
        lines.append("")
        lines.append(f"If the new behaviour is right, record the trace again (in {self.rootpath}):")
        lines.append(f"  {self._command(RecordMode.NEW)}")
        return "\n".join(lines)

    def _command(self, mode: RecordMode) -> str:
        return f"pytest {OPTION}={mode.value} {shlex.quote(self.nodeid)}"

    def _shown(self) -> str:
        return _shown(self.path, self.rootpath)


# -- reading the marker and the configuration ----------------------------------------------------
def _defaults(test_file: Path) -> dict[str, Any]:
    here = test_file.parent
    return {
        "guest_dir": here,
        "data_dir": here,
        "traces_dir": here / "traces",
        "allow_different_guest": True,
        "exit_status": 0,
    }


def _marked(node: pytest.Item) -> dict[str, Any]:
    """The marker keywords; a test's own marker wins over its class's, then its module's."""
    merged: dict[str, Any] = {}
    for mark in reversed(list(node.iter_markers(MARKER))):
        if mark.args:
            _usage(
                node.nodeid,
                "takes keywords only, as in @pytest.mark.wasitrace(guest='app.wasm', args=[...])",
            )
        unknown = sorted(set(mark.kwargs) - set(SPEC_KEYS))
        if unknown:
            _usage(node.nodeid, f"got unknown keywords {', '.join(unknown)}; it takes {_keys()}")
        merged.update(mark.kwargs)
    return merged


def _spec(config: Mapping[str, Any], nodeid: str) -> _Spec:
    unknown = sorted(set(config) - set(SPEC_KEYS) - set(CONFIG_KEYS))
    if unknown:
        _usage(nodeid, f"wasitrace_config has unknown keys {', '.join(unknown)}")
    if config.get("guest") is None:
        _usage(nodeid, "names no guest: give guest= in the marker or in wasitrace_config")
    guest_dir = Path(config["guest_dir"])
    data_dir = Path(config["data_dir"])
    guest = guest_dir / Path(config["guest"])
    args = config.get("args") or []
    if isinstance(args, str | bytes) or not all(isinstance(a, str) for a in args):
        _usage(nodeid, "args= must be a list of strings")
    env_value = config.get("env") or {}
    env = list(env_value.items()) if isinstance(env_value, Mapping) else list(env_value)
    if not all(
        isinstance(pair, tuple | list) and len(pair) == 2 and all(isinstance(s, str) for s in pair)
        for pair in env
    ):
        _usage(nodeid, "env= must be a dict of strings, or a list of (name, value) pairs")
    dirs = {str(g): data_dir / Path(h) for g, h in dict(config.get("dirs") or {}).items()}
    mem = {
        str(g): None if h is None else data_dir / Path(h)
        for g, h in dict(config.get("mem") or {}).items()
    }
    stdin = config.get("stdin")
    if stdin is not None and not isinstance(stdin, bytes):
        stdin = data_dir / Path(stdin)
    exit_status = config.get("exit_status", 0)
    if exit_status is not None and not isinstance(exit_status, int):
        _usage(nodeid, "exit_status= must be an int, or None to accept any ending")
    argv0 = config.get("argv0")
    return _Spec(
        guest=guest,
        args=list(args),
        argv0=str(argv0) if argv0 is not None else guest.name,
        env=[(str(k), str(v)) for k, v in env],
        dirs=dirs,
        mem=mem,
        stdin=stdin,
        exit_status=exit_status,
        options=RunOptions(
            invoke=config.get("invoke"),
            trap_unknown_imports=bool(config.get("trap_unknown_imports")),
        ),
        allow_different_guest=bool(config.get("allow_different_guest", True)),
    )


def _trace_path(config: Mapping[str, Any], request: pytest.FixtureRequest) -> Path:
    traces = Path(config["traces_dir"])
    if not traces.is_absolute():
        traces = request.path.parent / traces
    name = request.node.name
    if request.cls is not None:
        name = f"{request.cls.__name__}.{name}"
    return traces / request.path.stem / f"{_file_name(name)}.wtrace"


def _file_name(name: str) -> str:
    # Parameter ids may hold characters that no file name can (or should) carry.
    return re.sub(r'[<>:"/\\|?*\x00-\x1f]', "-", name)


def _usage(nodeid: str, problem: str) -> NoReturn:
    pytest.fail(f"{nodeid}: @pytest.mark.{MARKER} {problem}.", pytrace=False)


def _keys() -> str:
    return ", ".join(SPEC_KEYS)


def _env(pairs: Iterable[tuple[str, str]]) -> str:
    return "[" + ", ".join(f"{k}={v}" for k, v in pairs) + "]"


def _mounts(mounts: list[tuple[str, str]]) -> str:
    return "[" + ", ".join(f"{g} ({kind})" for g, kind in mounts) + "]"


def _shown(path: Path, root: Path) -> str:
    try:
        return os.path.relpath(path, root)
    except ValueError:
        return str(path)
