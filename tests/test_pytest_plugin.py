"""The pytest plugin through pytester: record modes, replays that pass, divergences that fail."""

from __future__ import annotations

import importlib.metadata
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Imported here so the inner runs find wasmtime and the rest already loaded: pytester forgets
# every module an inner run imports, and importing them again costs a second per run.
import replay.api  # noqa: F401
from tracer.trace import open_trace

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "examples" / "catalog.wasm"
CATALOG_C = ROOT / "examples" / "guest" / "catalog.c"
DATA = ROOT / "examples" / "data"

TEST_FILE = """
import pytest

@pytest.mark.wasitrace(guest="catalog.wasm", mem={"/data": "data"}, args=ARGS)
def test_catalog(wasitrace_guest):
    assert b"3 files, 47 words" in wasitrace_guest.stdout
"""


def _plugin_args() -> list[str]:
    # Until the `pytest11` entry point is installed, the inner runs load the plugin by name;
    # loading it both ways would register it twice.
    installed = any(
        ep.value == "replay.pytest_plugin"
        for ep in importlib.metadata.entry_points(group="pytest11")
    )
    return [] if installed else ["-p", "replay.pytest_plugin"]


@pytest.fixture(scope="module")
def changed_guest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """catalog.wasm built with one string changed: its summary line says WORDS."""
    source = CATALOG_C.read_text()
    changed = source.replace('"%d files, %ld words\\n"', '"%d files, %ld WORDS\\n"')
    assert changed != source
    out = tmp_path_factory.mktemp("changed") / "catalog.wasm"
    src = out.with_suffix(".c")
    src.write_text(changed)
    zig_cc = [sys.executable, "-m", "ziglang", "cc", "-target", "wasm32-wasi", "-O2", "-s"]
    subprocess.run([*zig_cc, str(src), "-o", str(out)], check=True, capture_output=True)
    return out


@pytest.fixture
def project(pytester: pytest.Pytester) -> Path:
    """A project with the example guest, its data, and one marked test."""
    shutil.copy(CATALOG, pytester.path / "catalog.wasm")
    shutil.copytree(DATA, pytester.path / "data")
    _write_test(pytester, args=[])
    return pytester.path


def _write_test(pytester: pytest.Pytester, args: list[str]) -> None:
    pytester.makepyfile(test_catalog=TEST_FILE.replace("ARGS", repr(args)))


# Plugins of this environment that the inner runs do not need: hypothesis's imports all of
# hypothesis at the end of every inner session (seconds each, as pytester forgets the modules
# an inner run imported), and textual-snapshot's cleans up a temporary directory that in-process
# runs share.
_UNNEEDED = ["-p", "no:hypothesispytest", "-p", "no:textual-snapshot"]


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess(*_UNNEEDED, *_plugin_args(), *args)


def _trace(project: Path) -> Path:
    return project / "traces" / "test_catalog" / "test_catalog.wtrace"


def _recorded_sha256(trace: Path) -> str:
    with open_trace(trace) as opened:
        return opened.header.guest.sha256


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_once_records_a_missing_trace_and_the_next_run_replays_it_without_the_data(
    pytester: pytest.Pytester, project: Path
) -> None:
    first = _run(pytester, "--wasitrace-record-mode=once")
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(["*recorded traces*test_catalog.wtrace*"])
    trace = _trace(project)
    recorded = trace.read_bytes()

    # A replay reads nothing but the trace: without the data the test passes all the same.
    shutil.rmtree(project / "data")
    second = _run(pytester, "--wasitrace-record-mode=once")
    second.assert_outcomes(passed=1)
    assert "recorded traces" not in second.stdout.str()
    assert trace.read_bytes() == recorded


def test_a_matching_guest_passes_in_the_default_replay_only_mode(
    pytester: pytest.Pytester, project: Path
) -> None:
    _run(pytester, "--wasitrace-record-mode=once").assert_outcomes(passed=1)
    _run(pytester).assert_outcomes(passed=1)


def test_a_changed_guest_fails_with_the_divergence_report(
    pytester: pytest.Pytester, project: Path, changed_guest: Path
) -> None:
    _run(pytester, "--wasitrace-record-mode=once").assert_outcomes(passed=1)
    shutil.copy(changed_guest, project / "catalog.wasm")
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "The guest departed from the trace at event #" in out
    assert '"les, 47 words\\n"' in out and '"les, 47 WORDS\\n"' in out
    assert "pytest --wasitrace-record-mode=new test_catalog.py::test_catalog" in out
    # The report is the failure, not a traceback of the plugin or of the test's own assertion.
    assert "Traceback" not in out and "assert b" not in out


def test_replay_only_with_a_missing_trace_fails_with_the_command_that_records_it(
    pytester: pytest.Pytester, project: Path
) -> None:
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    assert not _trace(project).exists()
    line = next(
        line.strip() for line in result.stdout.lines if "--wasitrace-record-mode=once" in line
    )
    assert line == "pytest --wasitrace-record-mode=once test_catalog.py::test_catalog"
    # The command it names does record the trace.
    _run(pytester, *shlex.split(line)[1:]).assert_outcomes(passed=1)
    assert _trace(project).is_file()


def test_all_records_over_an_existing_trace(
    pytester: pytest.Pytester, project: Path, changed_guest: Path
) -> None:
    _run(pytester, "--wasitrace-record-mode=once").assert_outcomes(passed=1)
    assert _recorded_sha256(_trace(project)) == _sha256(CATALOG)
    shutil.copy(changed_guest, project / "catalog.wasm")
    pytester.makepyfile(
        test_catalog=TEST_FILE.replace("ARGS", "[]").replace("47 words", "47 WORDS")
    )
    _run(pytester, "--wasitrace-record-mode=all").assert_outcomes(passed=1)
    assert _recorded_sha256(_trace(project)) == _sha256(changed_guest)
    assert not list(_trace(project).parent.glob("*.part"))
    _run(pytester).assert_outcomes(passed=1)


def test_new_records_again_a_trace_the_guest_departs_from_and_says_so(
    pytester: pytest.Pytester, project: Path, changed_guest: Path
) -> None:
    _run(pytester, "--wasitrace-record-mode=once").assert_outcomes(passed=1)
    shutil.copy(changed_guest, project / "catalog.wasm")
    pytester.makepyfile(test_catalog=TEST_FILE.replace("ARGS", "[]").replace("words", "WORDS"))
    result = _run(pytester, "--wasitrace-record-mode=new")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*re-recorded (diverged at event #*) traces*test_catalog.wtrace*"])
    assert _recorded_sha256(_trace(project)) == _sha256(changed_guest)


def test_new_leaves_a_matching_trace_untouched(pytester: pytest.Pytester, project: Path) -> None:
    _run(pytester, "--wasitrace-record-mode=once").assert_outcomes(passed=1)
    before = _trace(project).read_bytes()
    result = _run(pytester, "--wasitrace-record-mode=new")
    result.assert_outcomes(passed=1)
    assert "recorded" not in result.stdout.str()
    assert _trace(project).read_bytes() == before


def test_rewrite_deletes_the_trace_and_records_it_again(
    pytester: pytest.Pytester, project: Path
) -> None:
    _run(pytester, "--wasitrace-record-mode=once").assert_outcomes(passed=1)
    _trace(project).write_bytes(b"not a trace")
    _run(pytester).assert_outcomes(failed=1)
    _run(pytester, "--wasitrace-record-mode=rewrite").assert_outcomes(passed=1)
    _run(pytester).assert_outcomes(passed=1)


def test_a_test_that_now_gives_other_arguments_fails_until_recorded_again(
    pytester: pytest.Pytester, project: Path
) -> None:
    _run(pytester, "--wasitrace-record-mode=once").assert_outcomes(passed=1)
    _write_test(pytester, args=["/data"])
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    assert (
        "was recorded with other inputs: arguments ['catalog.wasm'], now ['catalog.wasm', '/data']"
        in result.stdout.str()
    )
    _run(pytester, "--wasitrace-record-mode=new").assert_outcomes(passed=1)
    _run(pytester).assert_outcomes(passed=1)


def test_a_guest_that_ends_otherwise_than_the_marker_expects_fails(
    pytester: pytest.Pytester, project: Path
) -> None:
    pytester.makepyfile(
        test_catalog=TEST_FILE.replace("ARGS", "[]").replace("mem=", "exit_status=3, mem=")
    )
    result = _run(pytester, "--wasitrace-record-mode=once")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ended with exit status 0, where the test expects 3*"])


def test_the_configuration_fixture_supplies_the_guest_and_the_traces_directory(
    pytester: pytest.Pytester, project: Path
) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def wasitrace_config(wasitrace_config):
            return {**wasitrace_config, "guest": "catalog.wasm", "traces_dir": "pinned"}
        """
    )
    pytester.makepyfile(
        test_catalog="""
        import pytest

        @pytest.mark.wasitrace(mem={"/data": "data"})
        def test_catalog(wasitrace_guest):
            assert wasitrace_guest.exit_status == 0
        """
    )
    _run(pytester, "--wasitrace-record-mode=once").assert_outcomes(passed=1)
    assert (project / "pinned" / "test_catalog" / "test_catalog.wtrace").is_file()


def test_an_unknown_record_mode_is_refused_naming_the_valid_ones(
    pytester: pytest.Pytester, project: Path
) -> None:
    result = _run(pytester, "--wasitrace-record-mode=sometimes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*'sometimes' is not a wasitrace record mode; use one of none, once, new, all, rewrite.*"]
    )
