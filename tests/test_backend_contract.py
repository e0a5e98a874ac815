"""Runs the shared filesystem contract (`tests/backend_contract.py`) against every backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backend_contract import FilesystemContract
from tracer.backend import Filesystem
from tracer.backends.memory import MemoryBackend


class TestMemoryBackend(FilesystemContract):
    @pytest.fixture
    def fs(self) -> Filesystem:
        return MemoryBackend()


class TestHostDirBackend(FilesystemContract):
    @pytest.fixture
    def fs(self, tmp_path: Path) -> Iterator[Filesystem]:
        hostdir = pytest.importorskip("tracer.backends.hostdir")
        root = tmp_path / "root"
        root.mkdir()
        with hostdir.HostDirBackend(root) as fs:
            yield fs
        # Whatever a test did inside the mount, nothing may appear beside it.
        assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]
