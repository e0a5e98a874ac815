"""The benchmarks still run: each mode of benchmarks/run.py, tiny, and its figures printed."""

from __future__ import annotations

import re

import pytest

from benchmarks import run


def test_every_mode_runs_and_the_paired_figure_is_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    modes = "wasmtime,mem,dir,record,replay,record-py,mem-plain"
    argv = ["--calls", "20", "--repeat", "1", "--pairs", "2", "--pair-calls", "20"]
    assert run.main([*argv, "--ops", "stat,mix", "--modes", modes]) == 0
    out = capsys.readouterr().out
    header, *rows = [line for line in out.splitlines() if line.startswith(("op ", "stat", "mix"))]
    assert header.split()[1:] == modes.split(",")
    assert [row.split()[0] for row in rows] == ["stat", "mix"]
    paired = re.search(r"2 rounds of dir, record, record, dir .* median (\d+\.\d+)x", out)
    assert paired and float(paired.group(1)) > 0
    assert "all rounds together" in out
