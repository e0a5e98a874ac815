"""Differential tests: every C guest under wasmtime's own WASI and under `wasitrace run`.

Each scenario (a guest with its arguments, environment, stdin and preopens) runs
  (a) under the reference runner (tests/reference.py: wasmtime's built-in WASI),
  (b) under `wasitrace run --dir HOST::GUEST`, on a fresh copy of the same starting tree,
  (c) under `wasitrace run --mem HOST::GUEST`, seeded from another fresh copy.
All three must print the same stdout and stderr and exit with the same status; (a) and (b) must
leave identical trees behind (names, types, file contents, symlink targets), and (c) must leave
its seed directory untouched.

The reference runs are also checked on their own (select them with `-k reference`): each is run
twice and must give the same output and tree, exit as expected, and print the lines listed in
its scenario, which were read and judged correct when the scenario was written.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import pytest

from tests.guestbuild import GuestFactory
from tests.reference import TRAP_STATUS, Outcome, Tree, run_reference, run_wasitrace, snapshot
from tracer.trace import open_trace

TIMEOUT = 120.0
WORLD_DIRS = ("tree", "other", "ro")


@dataclass(frozen=True)
class Mount:
    """A directory of the scenario's world, preopened for the guest."""

    name: str  # one of WORLD_DIRS
    guest: str
    read_only: bool = False


DATA = Mount("tree", "/data")
OTHER = Mount("other", "/other")
READ_ONLY = Mount("ro", "/ro", read_only=True)


@dataclass(frozen=True)
class Scenario:
    id: str
    guest: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    stdin: bytes = b""
    mounts: tuple[Mount, ...] = (DATA,)
    argv0: str | None = None
    invoke: str | None = None
    status: int = 0
    # Lines the reference run must print (stdout), checked when the scenario was written.
    expect: tuple[str, ...] = field(default=())
    # Why wasitrace is known to differ from wasmtime here (the agreement tests then xfail).
    known_difference: str | None = None

    @property
    def traps(self) -> bool:
        """After a trap, stderr ends with the runner's own report, which may differ in wording."""
        return self.status == TRAP_STATUS


def _stdin_bytes() -> bytes:
    # Every byte value, in a pattern that does not repeat on a 4 KiB boundary.
    return b"".join(bytes((i * 7 + j) % 256 for j in range(251)) for i in range(1200))


LINES = (
    b"one\r\ntwo\n\nthree is a line long enough to be split by a sixteen-byte buffer\n"
    + (b"x" * 500)
    + b"\nlast line without newline"
)

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "args",
        "args",
        args=("one", "two words", "", "ünï", "--flag=1"),
        env=(("GREETING", "hi"), ("EMPTY", ""), ("X", "a=b"), ("UNICODE", "ü")),
        expect=(
            "argc=6",
            "argv[0]=[args.wasm] len=9",
            "argv[4]=[ünï] len=5",
            "environ[2]=[X=a=b]",
            "getenv(GREETING)=[hi]",
            "args: count=6 bytes=40",
            "  canary intact",
        ),
    ),
    Scenario(
        "args-argv0",
        "args",
        argv0="renamed",
        expect=("argv[0]=[renamed] len=7", "environ: count=0 bytes=0"),
    ),
    Scenario(
        "clocks",
        "clocks",
        expect=(
            "realtime after 2020: yes",
            "process-cputime time: EBADF",
            "monotonic went backwards 0 times in 1000 reads",
            "monotonic advanced by >= 20 ms over the sleep: yes",
        ),
    ),
    Scenario(
        "misc",
        "misc",
        expect=(
            "random_get 65543 bytes: ok, looks random, guard intact",
            "two 32-byte draws differ: yes",
            "proc_raise(SIGUSR1=10): ENOTSUP",
            "file: accept=ENOTSOCK recv=ENOTSOCK send=ENOTSOCK shutdown=ENOTSOCK",
            "closed fd 77: accept=EBADF recv=EBADF send=EBADF shutdown=EBADF",
        ),
    ),
    Scenario(
        "open",
        "open",
        expect=(
            "open symlink, not following: ELOOP",
            "create exclusive, existing: EEXIST",
            "open with sync: ENOTSUP",
            "O_DIRECTORY|O_CREAT: EINVAL",
            "open invalid utf-8 name: EILSEQ",
            "file trunc.txt: 8 bytes [Xbc+tail]",
            "write to read-only fd: EBADF, 0 bytes",
            "path_open relative to a file fd: ENOTDIR",
            "path with an embedded NUL: EINVAL",
        ),
    ),
    Scenario(
        "rw",
        "rw",
        expect=(
            "seek SET -1: EINVAL",
            "seek stdin: ESPIPE",
            "pread stdin: ESPIPE",
            "tell after pread/pwrite: 16",
            "big file: read back 204800 bytes, 0 mismatches",
            "read dir: EBADF",
        ),
    ),
    Scenario(
        "filestat",
        "filestat",
        expect=(
            "fstat after set_size 4: regular-file size=4 nlink=1",
            "times sized.bin: atim=1600000000123456789 mtim=1234567890000000001",
            "set_times ATIM|ATIM_NOW on closed fd 99: EINVAL",
            "times link-to-hello: atim=1234567890000000001 mtim=1600000000123456789",
            "stat dangling (follow): ENOENT",
            "allocate file: ENOTSUP",
            "sync dir: EBADF",
        ),
    ),
    Scenario(
        "fdstat",
        "fdstat",
        expect=(
            "fdstat file opened append|nonblock: regular-file flags=append nonblock ",
            "set_flags file sync: EINVAL",
            "set_flags dir: EBADF",
            "set_rights file: ENOTSUP",
            "file hello.txt: 23 bytes [Hello, world\\n[appended]]",
        ),
    ),
    Scenario(
        "fdtable",
        "fdtable",
        mounts=(DATA, OTHER),
        expect=(
            "  prestat 4: tag=0 len=6 name=[/other] ok",
            "prestat_dir_name with a short buffer: ENAMETOOLONG",
            "open d (after closing a then b): fd 6",
            "read fd 8 (was d, at offset 7): ok [world]",
            "renumber c -> 99 (target not open): EBADF",
            "  prestat 5: tag=0 len=5 name=[/data] ok",
            "open relative to the closed preopen: EBADF",
        ),
    ),
    Scenario(
        "dirs",
        "dirs",
        expect=(
            "mkdir made/inner/deepest/: ok",
            "rmdir made: ENOTEMPTY",
            "rmdir .: EINVAL",
            "unlink made/inner: EISDIR",
            "rmdir link-to-sub: ENOTDIR",
            "mkdir inside the removed dir: ENOENT",
            "unlinked open file: size=14 nlink=0",
        ),
    ),
    Scenario(
        "readdir_raw",
        "readdir_raw",
        expect=(
            "empty dir: 51 bytes",
            "  d_next=3 d_namlen=10 d_type=regular-file name=[entry-name]",
            "buffer 10: used 10, bytes after it untouched: yes",
            "cookie 2: 34 bytes, first [entry-name] d_next=3",
            "cookie 1000: 0 bytes",
            "readdir on a regular file: EBADF",
        ),
    ),
    Scenario(
        "walk",
        "walk",
        args=("/data",),
        expect=(
            "  escape-link -> ../outside.txt (EPERM)",
            "      c.txt (file, 8 bytes)",
            "scandir /data: 9 entries",
            "fopen deeper/c.txt: charlie",
        ),
    ),
    Scenario(
        "rename",
        "rename",
        expect=(
            "file f2.txt: 3 bytes [one]",
            "rename d2 -> d3: ENOTEMPTY",
            "rename hello.txt -> d2: EISDIR",
            "rename d2 -> hello.txt: ENOTDIR",
            "rename d2 -> d2/inner: EINVAL",
            "file sub/hello-moved.txt: 13 bytes [hello, world\\n]",
            "read through fd opened before rename: ok [bravo",
        ),
    ),
    Scenario(
        "rename-across-preopens",
        "rename",
        args=("across-preopens",),
        mounts=(DATA, OTHER),
        known_difference=(
            "each mount is a filesystem of its own in wasitrace, so renaming or linking across "
            "two mounts fails with EXDEV, as between two devices; wasmtime lets it through"
        ),
        expect=(
            "rename hello.txt -> /other/hello-moved.txt: ok",
            "file sub/o.txt: 6 bytes [other\\n]",
            "stat a-hard.txt: regular-file size=6 nlink=2",
        ),
    ),
    Scenario(
        "links",
        "links",
        expect=(
            "stat hard.txt: regular-file size=13 nlink=2",
            "link sub -> sub-hardlink: EPERM",
            "link link-to-hello (follow) -> followed: EINVAL",
            "symlink s-absolute -> /etc/passwd: EPERM",
            "readlink s1 (buffer 4): ok, 4 bytes [hell] next byte untouched",
            "readlink abs-link (buffer 64): EPERM",
            "stat loop-a (follow): ELOOP",
            "open s1 without following: ELOOP",
        ),
    ),
    Scenario(
        "escape",
        "escape",
        expect=(
            "open ..: EPERM",
            "open /etc/passwd: EPERM",
            "open escape-link: EPERM",
            "open sub/../hello.txt: ok",
            "symlink ../../etc -> up (stored as is): ok",
            "open ../hello.txt from sub: EPERM",
            "libc open /data/../outside.txt: EPERM",
        ),
    ),
    Scenario(
        "poll",
        "poll",
        expect=(
            "sleep 10 ms (monotonic): ok, 1 events",
            "  slept at least 10 ms: yes, less than 5 s: yes",
            "  userdata=33 error=ok type=1 nbytes=1 flags=1",
            "  userdata=41 error=ok type=2 nbytes=1 flags=0",
            "no subscriptions: EINVAL",
            "process cputime clock among others: EINVAL",
        ),
    ),
    Scenario("cat", "cat", stdin=_stdin_bytes()),
    Scenario("cat-empty", "cat"),
    Scenario(
        "lines",
        "lines",
        stdin=LINES,
        expect=(
            "line 1: 5 bytes (crlf) [one]",
            "line 6: 25 bytes (no newline) [last line without newline]",
        ),
    ),
    Scenario(
        "lines-fgets",
        "lines",
        args=("fgets",),
        stdin=LINES,
        expect=(
            "piece 1: 5 bytes (line end) [one\\r]",
            "total: 44 pieces, 601 bytes, eof=1 error=0",
        ),
    ),
    Scenario("bigio", "bigio", expect=("write of no iovecs to stdout reported 0 bytes",)),
    Scenario("bigio-4k", "bigio", args=("4097",)),
    *(
        Scenario(
            f"exit-{how}-{code}",
            "exitcodes",
            args=(how, str(code)),
            status=TRAP_STATUS if code >= 126 else code,
            expect=(f"about to {how} {code}",),
        )
        for how, code in (
            ("return", 0),
            ("return", 1),
            ("return", 42),
            ("exit", 42),
            ("exit", 255),
            ("proc_exit", 0),
            ("proc_exit", 42),
            ("proc_exit", 125),
            ("proc_exit", 126),
            ("return", 255),
        )
    ),
    *(
        Scenario(
            f"trap-{mode}", "trap", args=(mode,), status=TRAP_STATUS, expect=("before the trap",)
        )
        for mode in (
            "unreachable",
            "oob-load",
            "oob-store",
            "stack-overflow",
            "bad-clock-id",
            "bad-fdflags",
            "bad-whence",
            "oob-pointer",
        )
    ),
    Scenario(
        "reactor-run",
        "reactor",
        invoke="run",
        env=(("MODE", "reactor"),),
        expect=(
            "reactor run: constructor value 1234, call 1",
            "env: MODE=reactor",
            "hello.txt: hello, world",
        ),
    ),
    Scenario("reactor-answer", "reactor", invoke="answer", expect=("42",)),
    Scenario(
        "callheavy",
        "callheavy",
        args=("300",),
        expect=("rounds=300 size=4096 read=1183650 checksum=1dc6b4fe415e7464",),
    ),
    Scenario(
        "setjmp",
        "setjmp",
        expect=(
            "setjmp returned 25 (attempt 3)",
            "lines written before the jump: 5",
            "longjmp(env, 0) made setjmp return 1",
        ),
    ),
    Scenario(
        "badfd",
        "badfd",
        expect=(
            "fd_prestat_dir_name        EBADF    ENOTDIR  ENOTDIR  ok       ENOTDIR  ENOTDIR ",
            "path_open                  EBADF    EBADF    EBADF    ok       ENOENT   ENOTDIR ",
        ),
    ),
    Scenario(
        "readonly",
        "readonly",
        mounts=(DATA, READ_ONLY),
        expect=(
            "open for writing: EPERM",
            "mkdir: EPERM",
            "rename rw -> ro: EPERM",
            "open with append: ok",
        ),
    ),
    Scenario(
        "stdio_file",
        "stdio_file",
        expect=(
            "fscanf: 3 -> numbers 42 3.14",
            "/data/notes.txt: 7 bytes [NUMBERS]",
            "rmdir non-empty: ENOTEMPTY",
        ),
    ),
)

ids = [s.id for s in SCENARIOS]
assert len(set(ids)) == len(ids), "scenario ids must be unique"


def make_world(root: Path) -> Path:
    """The starting tree of every scenario: `tree` (at /data), `other`, `ro`, a file outside."""
    root.mkdir(parents=True)
    tree = root / "tree"
    (tree / "sub" / "deeper").mkdir(parents=True)
    (tree / "emptydir").mkdir()
    (root / "outside.txt").write_text("outside the preopens\n")
    (tree / "hello.txt").write_text("hello, world\n")
    (tree / "empty.txt").write_bytes(b"")
    (tree / "sub" / "a.txt").write_text("alpha\n")
    (tree / "sub" / "b.txt").write_text("bravo\n")
    (tree / "sub" / "deeper" / "c.txt").write_text("charlie\n")
    os.symlink("hello.txt", tree / "link-to-hello")
    os.symlink("sub", tree / "link-to-sub")
    os.symlink("nowhere", tree / "dangling")
    os.symlink("../outside.txt", tree / "escape-link")
    os.symlink("/etc/passwd", tree / "abs-link")
    (root / "other").mkdir()
    (root / "other" / "o.txt").write_text("other\n")
    shutil.copytree(tree, root / "ro", symlinks=True)
    return root


def cli_args(
    scenario: Scenario, world: Path, wasm: Path, stdin: Path, *, memory: bool = False
) -> list[str]:
    """The `wasitrace run` / reference argument list for a scenario over one copy of the world."""
    args: list[str] = []
    for mount in scenario.mounts:
        host = world / mount.name
        if memory and not mount.read_only:
            args += ["--mem", f"{host}::{mount.guest}"]
        else:
            args += ["--dir", f"{host}::{mount.guest}{':ro' if mount.read_only else ''}"]
    for key, value in scenario.env:
        args += ["--env", f"{key}={value}"]
    args += ["--stdin", str(stdin)]
    if scenario.argv0 is not None:
        args += ["--argv0", scenario.argv0]
    if scenario.invoke is not None:
        args += ["--invoke", scenario.invoke]
    return [*args, str(wasm), *scenario.args]


@dataclass(frozen=True)
class Run:
    outcome: Outcome
    tree: Tree  # what the world looked like afterwards
    replayed: Outcome | None = None  # RECORD: the replay of the trace, without the world
    trace: Path | None = None  # RECORD: the trace


class Mode(StrEnum):
    REFERENCE = "reference"
    REFERENCE_AGAIN = "reference-again"
    DIR = "wasitrace-dir"
    MEM = "wasitrace-mem"
    RECORD = "wasitrace-record"


# Which runs each parametrized test needs, so they can be started before the test is reached.
MODES_BY_TEST: dict[str, tuple[Mode, ...]] = {
    "test_reference_run_is_sane_and_deterministic": (Mode.REFERENCE, Mode.REFERENCE_AGAIN),
    "test_wasitrace_dir_agrees_with_wasmtime": (Mode.REFERENCE, Mode.DIR),
    "test_wasitrace_mem_agrees_with_wasmtime": (Mode.REFERENCE, Mode.MEM),
    "test_record_agrees_with_run_and_replay_reproduces_it": (Mode.DIR, Mode.RECORD),
}


class Runs:
    """Each scenario's runs, made once and ahead of need on every core.

    Every run is a separate process (a guest under wasmtime or wasitrace), so running them
    concurrently, in the order the tests will ask for them, keeps the machine busy while pytest
    walks through the tests one at a time.
    """

    def __init__(self, guest: GuestFactory, root: Path) -> None:
        self._guest = guest
        self._root = root
        self._pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2)
        self._futures: dict[tuple[str, Mode], Future[Run]] = {}
        self._lock = threading.Lock()

    def start(self, scenario: Scenario, mode: Mode) -> Future[Run]:
        with self._lock:
            key = (scenario.id, mode)
            if key not in self._futures:
                wasm = self._guest(scenario.guest)  # built here: zig runs one build at a time
                self._futures[key] = self._pool.submit(self._run, scenario, mode, wasm)
            return self._futures[key]

    def get(self, scenario: Scenario, mode: Mode) -> Run:
        return self.start(scenario, mode).result(timeout=TIMEOUT * 4)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, scenario: Scenario, mode: Mode, wasm: Path) -> Run:
        place = self._root / scenario.id / mode.value
        place.mkdir(parents=True)
        stdin = place / "stdin.bin"
        stdin.write_bytes(scenario.stdin)
        world = make_world(place / "world")
        memory = mode is Mode.MEM
        args = cli_args(scenario, world, wasm, stdin, memory=memory)
        if mode in (Mode.REFERENCE, Mode.REFERENCE_AGAIN):
            outcome = run_reference(args, timeout=TIMEOUT)
        elif mode is Mode.RECORD:
            trace = place / "guest.wtrace"
            outcome = run_wasitrace(["-o", str(trace), *args], timeout=TIMEOUT, command="record")
            tree = snapshot(world)
            # Replay with the world gone, from another directory: the trace alone must do.
            shutil.rmtree(world)
            elsewhere = place / "elsewhere"
            elsewhere.mkdir()
            replayed = run_wasitrace([str(trace)], timeout=TIMEOUT, command="replay", cwd=elsewhere)
            return Run(outcome, tree, replayed, trace)
        else:
            outcome = run_wasitrace(args, timeout=TIMEOUT)
        return Run(outcome, snapshot(world))


@pytest.fixture(scope="module")
def runs(
    request: pytest.FixtureRequest, guest: GuestFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Runs]:
    pool = Runs(guest, tmp_path_factory.mktemp("runs"))
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if getattr(item, "module", None) is request.module and callspec is not None:
            for mode in MODES_BY_TEST.get(getattr(item, "originalname", ""), ()):
                pool.start(callspec.params["scenario"], mode)
    yield pool
    pool.close()


def guest_stderr(scenario: Scenario, stderr: bytes) -> bytes:
    """The part of stderr the guest wrote: after a trap, the runner's own report is cut off."""
    if scenario.traps:
        return stderr.split(b"Error: ", 1)[0]
    return stderr


def assert_same_outcome(scenario: Scenario, expected: Outcome, actual: Outcome, what: str) -> None:
    assert actual.status == expected.status, (
        f"{what}: exit status {actual.status}, wasmtime {expected.status}\n"
        f"stderr: {actual.stderr.decode(errors='replace')[-2000:]}"
    )
    assert actual.stdout.decode(errors="replace") == expected.stdout.decode(errors="replace"), (
        f"{what}: stdout"
    )
    assert actual.stdout == expected.stdout, f"{what}: stdout bytes"
    if scenario.traps:
        assert actual.stderr.startswith(guest_stderr(scenario, expected.stderr)), (
            f"{what}: stderr before the trap"
        )
    else:
        assert actual.stderr.decode(errors="replace") == expected.stderr.decode(errors="replace"), (
            f"{what}: stderr"
        )


def scenario_named(name: str) -> Scenario:
    return next(s for s in SCENARIOS if s.id == name)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=ids)
def test_reference_run_is_sane_and_deterministic(scenario: Scenario, runs: Runs) -> None:
    first = runs.get(scenario, Mode.REFERENCE)
    second = runs.get(scenario, Mode.REFERENCE_AGAIN)

    out = first.outcome.stdout.decode(errors="replace")
    assert first.outcome.status == scenario.status, first.outcome.stderr.decode(errors="replace")
    assert "FATAL" not in out, out
    lines = out.splitlines()
    missing = [line for line in scenario.expect if line not in lines]
    assert not missing, f"lines missing from the reference output:\n{missing}\n--- output:\n{out}"
    assert second.outcome.stdout == first.outcome.stdout
    assert guest_stderr(scenario, second.outcome.stderr) == guest_stderr(
        scenario, first.outcome.stderr
    )
    assert second.outcome.status == first.outcome.status
    assert second.tree == first.tree


def test_reference_cat_copies_stdin_exactly(runs: Runs) -> None:
    scenario = scenario_named("cat")
    run = runs.get(scenario, Mode.REFERENCE)
    assert run.outcome.stdout == scenario.stdin
    assert run.outcome.stderr == f"cat: {len(scenario.stdin)} bytes\n".encode()


def test_reference_bigio_keeps_each_stream_whole(runs: Runs) -> None:
    run = runs.get(scenario_named("bigio"), Mode.REFERENCE)
    assert run.outcome.stdout.count(b"\nsmall ") == 250
    assert b"small 1 to stderr" in run.outcome.stderr
    assert b"small 1 to stderr" not in run.outcome.stdout
    assert len(run.outcome.stdout) > 2 * 100_000 + 65_536


def _mark_known_difference(scenario: Scenario, request: pytest.FixtureRequest) -> None:
    if scenario.known_difference:
        request.applymarker(pytest.mark.xfail(reason=scenario.known_difference, strict=True))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=ids)
def test_wasitrace_dir_agrees_with_wasmtime(
    scenario: Scenario, runs: Runs, request: pytest.FixtureRequest
) -> None:
    _mark_known_difference(scenario, request)
    expected = runs.get(scenario, Mode.REFERENCE)
    actual = runs.get(scenario, Mode.DIR)
    assert_same_outcome(scenario, expected.outcome, actual.outcome, "wasitrace run --dir")
    assert actual.tree == expected.tree


@pytest.mark.parametrize("scenario", SCENARIOS, ids=ids)
def test_wasitrace_mem_agrees_with_wasmtime(
    scenario: Scenario, runs: Runs, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    _mark_known_difference(scenario, request)
    expected = runs.get(scenario, Mode.REFERENCE)
    actual = runs.get(scenario, Mode.MEM)
    assert_same_outcome(scenario, expected.outcome, actual.outcome, "wasitrace run --mem")
    untouched = snapshot(make_world(tmp_path / "pristine"))
    assert actual.tree == untouched, "--mem must not write through to its seed directory"


PREVIEW1_FUNCTIONS = frozenset(
    [
        "args_get",
        "args_sizes_get",
        "environ_get",
        "environ_sizes_get",
        "clock_res_get",
        "clock_time_get",
        "fd_advise",
        "fd_allocate",
        "fd_close",
        "fd_datasync",
        "fd_fdstat_get",
        "fd_fdstat_set_flags",
        "fd_fdstat_set_rights",
        "fd_filestat_get",
        "fd_filestat_set_size",
        "fd_filestat_set_times",
        "fd_pread",
        "fd_prestat_get",
        "fd_prestat_dir_name",
        "fd_pwrite",
        "fd_read",
        "fd_readdir",
        "fd_renumber",
        "fd_seek",
        "fd_sync",
        "fd_tell",
        "fd_write",
        "path_create_directory",
        "path_filestat_get",
        "path_filestat_set_times",
        "path_link",
        "path_open",
        "path_readlink",
        "path_remove_directory",
        "path_rename",
        "path_symlink",
        "path_unlink_file",
        "poll_oneoff",
        "proc_exit",
        "proc_raise",
        "sched_yield",
        "random_get",
        "sock_accept",
        "sock_recv",
        "sock_send",
        "sock_shutdown",
    ]
)


def test_guests_together_import_every_preview1_function(guest: GuestFactory) -> None:
    import wasmtime

    from tests.guestbuild import guest_names

    engine = wasmtime.Engine()
    imported: set[str] = set()
    for name in guest_names():
        module = wasmtime.Module.from_file(engine, str(guest(name)))
        imported |= {
            i.name for i in module.imports if i.module == "wasi_snapshot_preview1" and i.name
        }
    assert imported >= PREVIEW1_FUNCTIONS, sorted(PREVIEW1_FUNCTIONS - imported)
    assert imported <= PREVIEW1_FUNCTIONS, sorted(imported - PREVIEW1_FUNCTIONS)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=ids)
def test_record_agrees_with_run_and_replay_reproduces_it(scenario: Scenario, runs: Runs) -> None:
    ran = runs.get(scenario, Mode.DIR)
    recorded = runs.get(scenario, Mode.RECORD)
    assert (recorded.outcome.stdout, recorded.outcome.stderr, recorded.outcome.status) == (
        ran.outcome.stdout,
        ran.outcome.stderr,
        ran.outcome.status,
    )
    assert recorded.tree == ran.tree
    assert recorded.trace is not None and recorded.replayed is not None
    with open_trace(recorded.trace) as trace:
        assert trace.damage is None and not trace.ended_early
        assert sum(1 for _ in trace) == len(trace) > 0
    replayed = recorded.replayed
    assert replayed.status == recorded.outcome.status, replayed.stderr.decode(errors="replace")
    assert replayed.stdout == recorded.outcome.stdout
    assert replayed.stderr == recorded.outcome.stderr
