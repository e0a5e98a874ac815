"""An in-memory filesystem: the embedded default `Filesystem`, and what the host one must match.

`MemoryBackend` keeps a tree of nodes (directories, regular files with `bytearray` contents,
symlinks) in Python objects. It follows Linux semantics wherever Linux defines an outcome --
which error a call gives, and in what order the checks happen -- because the host-directory
backend gets its answers from Linux and the two must be interchangeable; `tests/backend_contract.py`
and `tests/test_backends_agree.py` hold them to that. Where wasmtime deliberately refuses what
Linux allows, both backends refuse it too: symlinks with absolute targets (`not-permitted`) and
paths or names that are not UTF-8 (`illegal-byte-sequence`).

Paths are resolved as `tracer.backend` describes, confined beneath the descriptor they are given
with (the way `openat2(RESOLVE_BENEATH)` and wasmtime's capability handles confine them): a `..`
or a symlink that would climb above that directory fails with `not-permitted`.

Descriptors hold their node directly, so `read`, `write` and `stat` do no path work at all, and a
file unlinked while open stays readable through its descriptors.
"""

from __future__ import annotations

import heapq
import os
import stat as _stat
from time import time_ns as _now
from typing import ClassVar, TypeAlias

from tracer.backend import (
    Advice,
    DescriptorFlags,
    DescriptorStat,
    DescriptorType,
    DirectoryEntry,
    NewTimestamp,
    OpenFlags,
    PathFlags,
)
from tracer.errors import ErrorCode, WasiError

__all__ = ["DEVICE", "MemoryBackend", "SnapshotEntry"]

# The device number every node of a memory filesystem reports unless told otherwise ("mem").
DEVICE = 0x6D656D
# Linux's limits, so both backends refuse the same paths.
MAX_SYMLINKS = 40
NAME_MAX = 255
PATH_MAX = 4096
MAX_FILE_SIZE = 2**63 - 1

_DOTS = (".", "..")
# Flag bits as plain ints: IntFlag's own `&` costs more than a whole `read`.
_READ = DescriptorFlags.READ.value
_WRITE = DescriptorFlags.WRITE.value
_FOLLOW = PathFlags.SYMLINK_FOLLOW.value
_CREATE = OpenFlags.CREATE.value
_DIRECTORY = OpenFlags.DIRECTORY.value
_EXCLUSIVE = OpenFlags.EXCLUSIVE.value
_TRUNCATE = OpenFlags.TRUNCATE.value

# What `MemoryBackend.snapshot` maps a path to: contents, None for a directory, or a link's target.
SnapshotEntry: TypeAlias = bytes | tuple[str, str] | None


class _Node:
    __slots__ = ("atime", "ctime", "inode", "link_count", "mtime")
    kind: ClassVar[DescriptorType]

    def __init__(self, inode: int, now: int) -> None:
        self.inode = inode
        self.link_count = 1
        self.atime = now
        self.mtime = now
        self.ctime = now

    def size(self) -> int:
        raise NotImplementedError


class _File(_Node):
    __slots__ = ("data",)
    kind = DescriptorType.REGULAR_FILE

    def __init__(self, inode: int, now: int, data: bytes = b"") -> None:
        super().__init__(inode, now)
        self.data = bytearray(data)

    def size(self) -> int:
        return len(self.data)


class _Directory(_Node):
    # `parent` is None for the mount root and for removed directories; only rename_at reads it,
    # to refuse moving a directory beneath itself. A removed directory has link_count 0.
    __slots__ = ("entries", "parent")
    kind = DescriptorType.DIRECTORY

    def __init__(self, inode: int, now: int, parent: _Directory | None) -> None:
        super().__init__(inode, now)
        self.link_count = 2  # its name in the parent, and its own '.'
        self.entries: dict[str, _Node] = {}
        self.parent = parent

    def size(self) -> int:
        return len(self.entries)


class _Symlink(_Node):
    __slots__ = ("target",)
    kind = DescriptorType.SYMBOLIC_LINK

    def __init__(self, inode: int, now: int, target: str) -> None:
        super().__init__(inode, now)
        self.target = target

    def size(self) -> int:
        return len(_encoded(self.target))


class _Descriptor:
    # `file` is the node again when it is a regular file (None for a directory), so the data
    # path needs no type test; only files are ever `writable`.
    __slots__ = ("file", "flags", "node", "readable", "writable")

    def __init__(self, node: _Node, flags: int) -> None:
        self.node = node
        self.file = node if isinstance(node, _File) else None
        self.flags = flags
        self.readable = bool(flags & _READ)
        self.writable = self.file is not None and bool(flags & _WRITE)


class _Walk:
    """One path resolution's budget of symlinks (nested links share it, as in Linux)."""

    __slots__ = ("links",)

    def __init__(self) -> None:
        self.links = 0

    def follow(self, link: _Symlink) -> str:
        self.links += 1
        if self.links > MAX_SYMLINKS:
            raise WasiError(ErrorCode.LOOP, f"more than {MAX_SYMLINKS} symlinks")
        link.atime = _now()
        return link.target


def _encoded(text: str) -> bytes:
    """A path or name as the bytes Linux would measure (lone surrogates pass through)."""
    return text.encode("utf-8", "surrogatepass")


def _check_utf8(text: str) -> str:
    """`text`, if it is valid UTF-8 (WASI strings are); lone surrogates are not."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise WasiError(ErrorCode.ILLEGAL_BYTE_SEQUENCE, repr(text)) from None
    return text


def _split(path: str) -> tuple[list[str], bool]:
    """The non-empty components of a relative path, and whether it ends with '/'."""
    if path and "/" not in path and "\0" not in path and path.isascii():
        return [path], False  # one plain name, the common case
    if not path:
        raise WasiError(ErrorCode.NO_ENTRY, "empty path")
    if "\0" in path:
        raise WasiError(ErrorCode.INVALID, "path contains a NUL byte")
    _check_utf8(path)
    if len(path) >= PATH_MAX // 4 and len(_encoded(path)) >= PATH_MAX:
        raise WasiError(ErrorCode.NAME_TOO_LONG, "path is too long")
    if path[0] == "/":
        raise WasiError(ErrorCode.NOT_PERMITTED, f"absolute path {path!r}")
    return [part for part in path.split("/") if part], path[-1] == "/"


def _missing(name: str) -> WasiError:
    # A name longer than NAME_MAX can never exist; Linux reports its length, not its absence.
    if len(name) > NAME_MAX // 4 and len(_encoded(name)) > NAME_MAX:
        return WasiError(ErrorCode.NAME_TOO_LONG, f"name is longer than {NAME_MAX} bytes")
    return WasiError(ErrorCode.NO_ENTRY, repr(name))


def _escape() -> WasiError:
    return WasiError(ErrorCode.NOT_PERMITTED, "'..' would leave the directory")


def _bad_descriptor(fd: int) -> WasiError:
    return WasiError(ErrorCode.BAD_DESCRIPTOR, f"descriptor {fd}")


def _is_within(directory: _Directory, node: _Directory | None) -> bool:
    """Whether `node` is `directory` or lies beneath it."""
    while node is not None:
        if node is directory:
            return True
        node = node.parent
    return False


def _modified(directory: _Directory, now: int) -> None:
    directory.mtime = now
    directory.ctime = now


def _new_time(value: NewTimestamp, current: int, now: int) -> int:
    if value is None:
        return current
    if value == "now":
        return now
    return value


class MemoryBackend:
    """A complete `tracer.backend.Filesystem` held in memory.

    `device` is the device number every node reports; give two mounted memory filesystems
    different ones if a guest might compare (device, inode) pairs across them.
    """

    def __init__(self, *, device: int = DEVICE) -> None:
        self._device = device
        self._next_inode = 1
        self._root = _Directory(self._inode(), _now(), None)
        self._descriptors: dict[int, _Descriptor] = {}
        self._free: list[int] = []  # closed descriptor numbers, a heap: lowest is reused first
        self._next_fd = 0
        self._root_fd = self._allocate(
            self._root, DescriptorFlags.READ | DescriptorFlags.MUTATE_DIRECTORY
        )

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def from_host_dir(cls, path: str | os.PathLike[str], *, device: int = DEVICE) -> MemoryBackend:
        """A memory filesystem holding a copy of the host tree at `path` (which is only read).

        Directories, regular files and symlinks (as symlinks) are copied with their access and
        modification times; files hard-linked together on the host stay linked. Any other kind
        of file (fifo, socket, device) raises ValueError naming it.
        """
        backend = cls(device=device)
        root_stat = os.stat(path)
        if not _stat.S_ISDIR(root_stat.st_mode):
            raise NotADirectoryError(f"{os.fspath(path)!r} is not a directory")
        backend._root.atime = root_stat.st_atime_ns
        backend._root.mtime = root_stat.st_mtime_ns
        linked: dict[tuple[int, int], _Node] = {}
        pending: list[tuple[str, _Directory]] = [(os.fspath(path), backend._root)]
        while pending:
            host_dir, directory = pending.pop()
            with os.scandir(host_dir) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
            for entry in entries:
                info = entry.stat(follow_symlinks=False)
                node = linked.get((info.st_dev, info.st_ino))
                if node is None:
                    node = backend._copy_host_node(entry.path, info, directory)
                    if isinstance(node, _Directory):
                        directory.link_count += 1
                        pending.append((entry.path, node))
                    elif info.st_nlink > 1:
                        linked[(info.st_dev, info.st_ino)] = node
                else:
                    node.link_count += 1
                directory.entries[entry.name] = node
        return backend

    def _copy_host_node(self, host_path: str, info: os.stat_result, parent: _Directory) -> _Node:
        now = _now()
        node: _Node
        if _stat.S_ISDIR(info.st_mode):
            node = _Directory(self._inode(), now, parent)
        elif _stat.S_ISREG(info.st_mode):
            node = _File(self._inode(), now, _read_host_file(host_path))
        elif _stat.S_ISLNK(info.st_mode):
            node = _Symlink(self._inode(), now, os.readlink(host_path))
        else:
            raise ValueError(
                f"cannot copy {host_path!r}: only directories, regular files and symlinks "
                "can be copied into a memory filesystem"
            )
        node.atime = info.st_atime_ns
        node.mtime = info.st_mtime_ns
        return node

    def snapshot(self) -> dict[str, SnapshotEntry]:
        """Every path under the root (not the root itself), '/'-joined and sorted.

        A file maps to its contents, a directory to None, a symlink to ("symlink", target).
        """
        result: dict[str, SnapshotEntry] = {}
        pending: list[tuple[str, _Directory]] = [("", self._root)]
        while pending:
            prefix, directory = pending.pop()
            for name, node in directory.entries.items():
                path = prefix + name
                if isinstance(node, _File):
                    result[path] = bytes(node.data)
                elif isinstance(node, _Symlink):
                    result[path] = ("symlink", node.target)
                else:
                    assert isinstance(node, _Directory)
                    result[path] = None
                    pending.append((path + "/", node))
        return dict(sorted(result.items()))

    # -- descriptors ---------------------------------------------------------------------------

    def _inode(self) -> int:
        inode = self._next_inode
        self._next_inode += 1
        return inode

    def _allocate(self, node: _Node, flags: int) -> int:
        fd = heapq.heappop(self._free) if self._free else self._next_fd
        if fd == self._next_fd:
            self._next_fd += 1
        self._descriptors[fd] = _Descriptor(node, flags)
        return fd

    def _directory(self, fd: int) -> _Directory:
        descriptor = self._descriptors.get(fd)
        if descriptor is None:
            raise _bad_descriptor(fd)
        node = descriptor.node
        if node.__class__ is not _Directory:
            raise WasiError(ErrorCode.NOT_DIRECTORY, f"descriptor {fd} is not a directory")
        assert isinstance(node, _Directory)
        return node

    def _node(self, fd: int) -> _Node:
        descriptor = self._descriptors.get(fd)
        if descriptor is None:
            raise _bad_descriptor(fd)
        return descriptor.node

    def root(self) -> int:
        return self._root_fd

    def close(self, fd: int) -> None:
        if fd not in self._descriptors:
            raise _bad_descriptor(fd)
        # The root descriptor lives as long as the filesystem (see `Filesystem.root`); who may
        # still name it is the mount table's business, so closing it here changes nothing.
        if fd == self._root_fd:
            return
        del self._descriptors[fd]
        heapq.heappush(self._free, fd)

    # -- path resolution -----------------------------------------------------------------------

    def _enter(self, stack: list[_Directory], name: str, walk: _Walk) -> None:
        """Step `stack` into directory `name` (not the last component: links are followed)."""
        if name == ".":
            return
        if name == "..":
            if len(stack) == 1:
                raise _escape()
            stack.pop()
            return
        node = stack[-1].entries.get(name)
        if node is None:
            raise _missing(name)
        if node.__class__ is _Directory:
            assert isinstance(node, _Directory)
            stack.append(node)
        elif node.__class__ is _Symlink:
            assert isinstance(node, _Symlink)
            for part in _split(walk.follow(node))[0]:
                self._enter(stack, part, walk)
        else:
            raise WasiError(ErrorCode.NOT_DIRECTORY, f"{name!r} is not a directory")

    def _parent(
        self, start: _Directory, path: str, walk: _Walk
    ) -> tuple[list[_Directory], str, bool]:
        """Resolve all but the last component: (directories from `start` on, last, trailing '/')."""
        parts, trailing = _split(path)
        stack = [start]
        for name in parts[:-1]:
            self._enter(stack, name, walk)
        return stack, parts[-1], trailing

    def _dot(self, stack: list[_Directory], last: str) -> _Directory:
        """The directory a final '.' or '..' names."""
        if last == ".":
            return stack[-1]
        if len(stack) == 1:
            raise _escape()
        return stack[-2]

    def _final(
        self, stack: list[_Directory], last: str, follow: bool, must_be_directory: bool, walk: _Walk
    ) -> _Node:
        """The node the last component names, following it (and links it leads to) if `follow`."""
        while True:
            if last in _DOTS:
                return self._dot(stack, last)
            node = stack[-1].entries.get(last)
            if node is None:
                raise _missing(last)
            if follow and node.__class__ is _Symlink:
                assert isinstance(node, _Symlink)
                parts, trailing = _split(walk.follow(node))
                for name in parts[:-1]:
                    self._enter(stack, name, walk)
                last = parts[-1]
                must_be_directory = must_be_directory or trailing
                continue
            if must_be_directory and node.__class__ is not _Directory:
                raise WasiError(ErrorCode.NOT_DIRECTORY, f"{last!r} is not a directory")
            return node

    def _lookup(self, fd: int, path_flags: int, path: str) -> _Node:
        start = self._directory(fd)
        # One plain name that exists and needs no following is the common case: one dict lookup.
        if "/" not in path and "\0" not in path and path.isascii():
            node = start.entries.get(path)
            if node is not None and (
                node.__class__ is not _Symlink or not int(path_flags) & _FOLLOW
            ):
                return node
        walk = _Walk()
        stack, last, trailing = self._parent(start, path, walk)
        # A trailing '/' asks for a directory, so a final symlink is followed regardless.
        follow = trailing or bool(int(path_flags) & _FOLLOW)
        return self._final(stack, last, follow, trailing, walk)

    def _creatable(
        self, stack: list[_Directory], last: str, trailing: bool, what: str
    ) -> _Directory:
        """The directory in which a new `last` may be made (mkdir-like checks, Linux's order)."""
        if last in _DOTS:
            self._dot(stack, last)
            raise WasiError(ErrorCode.EXIST, f"{last!r} exists")
        directory = stack[-1]
        if last in directory.entries:
            raise WasiError(ErrorCode.EXIST, f"{last!r} exists")
        _check_name(last)
        # A trailing '/' names a directory; only mkdir may create one.
        if trailing and what != "directory":
            raise WasiError(ErrorCode.NO_ENTRY, f"cannot create a {what} named {last + '/'!r}")
        if directory.link_count == 0:
            raise WasiError(ErrorCode.NO_ENTRY, "the directory has been removed")
        return directory

    # -- opening -------------------------------------------------------------------------------

    def open_at(self, fd: int, path_flags: int, path: str, open_flags: int, flags: int) -> int:
        # Plain ints: callers may pass IntFlag members, whose operators cost microseconds.
        path_flags, open_flags, flags = int(path_flags), int(open_flags), int(flags)
        # Linux rejects this combination before it looks at the descriptor or the path.
        create = bool(open_flags & _CREATE)
        if create and open_flags & _DIRECTORY:
            raise WasiError(ErrorCode.INVALID, "cannot create a directory with open_at")
        start = self._directory(fd)
        walk = _Walk()
        follow = bool(path_flags & _FOLLOW)
        stack, last, trailing = self._parent(start, path, walk)
        created = False
        if create:
            node, created = self._open_creating(
                stack, last, trailing, follow, bool(open_flags & _EXCLUSIVE), walk
            )
            if not created and node.__class__ is _Directory:
                raise WasiError(ErrorCode.IS_DIRECTORY, f"{path!r} is a directory")
        else:
            node = self._final(stack, last, follow or trailing, trailing, walk)
        kind = node.__class__
        if open_flags & _DIRECTORY and kind is not _Directory:
            raise WasiError(ErrorCode.NOT_DIRECTORY, f"{path!r} is not a directory")
        if kind is _Symlink:
            raise WasiError(ErrorCode.LOOP, f"{path!r} is a symlink and is not followed")
        if kind is _Directory:
            # O_TRUNC asks for write access too, which no directory grants.
            if flags & _WRITE or open_flags & _TRUNCATE:
                raise WasiError(ErrorCode.IS_DIRECTORY, f"{path!r} is a directory")
        elif open_flags & _TRUNCATE and not created:
            assert isinstance(node, _File)
            del node.data[:]
            node.mtime = node.ctime = _now()
        return self._allocate(node, flags)

    def _open_creating(
        self,
        stack: list[_Directory],
        last: str,
        trailing: bool,
        follow: bool,
        exclusive: bool,
        walk: _Walk,
    ) -> tuple[_Node, bool]:
        """open_at with CREATE: the node, and whether it was created (Linux's open_last_lookups)."""
        while True:
            if last in _DOTS:
                directory = self._dot(stack, last)
                if exclusive:
                    raise WasiError(ErrorCode.EXIST, f"{last!r} exists")
                return directory, False
            if trailing:
                raise WasiError(
                    ErrorCode.IS_DIRECTORY, f"cannot create a file named {last + '/'!r}"
                )
            parent = stack[-1]
            node = parent.entries.get(last)
            if node is None:
                _check_name(last)
                if parent.link_count == 0:
                    raise WasiError(ErrorCode.NO_ENTRY, "the directory has been removed")
                now = _now()
                node = parent.entries[last] = _File(self._inode(), now)
                _modified(parent, now)
                return node, True
            if exclusive:
                raise WasiError(ErrorCode.EXIST, f"{last!r} exists")
            if not (follow and node.__class__ is _Symlink):
                return node, False
            # A followed symlink: create (or open) whatever its target names.
            assert isinstance(node, _Symlink)
            parts, trailing = _split(walk.follow(node))
            for name in parts[:-1]:
                self._enter(stack, name, walk)
            last = parts[-1]

    # -- data ----------------------------------------------------------------------------------

    def read(self, fd: int, length: int, offset: int) -> bytes:
        descriptor = self._descriptors.get(fd)
        if descriptor is None or not descriptor.readable:
            raise _bad_descriptor(fd)
        file = descriptor.file
        if file is None:
            raise WasiError(ErrorCode.IS_DIRECTORY, f"descriptor {fd} is a directory")
        if offset < 0 or not 0 <= length <= MAX_FILE_SIZE:
            raise WasiError(ErrorCode.INVALID, "offset or length out of range")
        if length:
            file.atime = _now()
        return bytes(file.data[offset : offset + length])

    def write(self, fd: int, data: bytes, offset: int) -> int:
        descriptor = self._descriptors.get(fd)
        if descriptor is None or not descriptor.writable or descriptor.file is None:
            raise _bad_descriptor(fd)
        if offset < 0:
            raise WasiError(ErrorCode.INVALID, "negative offset")
        return _write(descriptor.file, data, offset)

    def append(self, fd: int, data: bytes) -> int:
        descriptor = self._descriptors.get(fd)
        if descriptor is None or not descriptor.writable or descriptor.file is None:
            raise _bad_descriptor(fd)
        return _write(descriptor.file, data, len(descriptor.file.data))

    def set_size(self, fd: int, size: int) -> None:
        if size < 0:
            raise WasiError(ErrorCode.INVALID, "negative size")
        descriptor = self._descriptors.get(fd)
        if descriptor is None:
            raise _bad_descriptor(fd)
        if not descriptor.writable:
            # ftruncate on a descriptor not open for writing (every directory) is EINVAL.
            raise WasiError(ErrorCode.INVALID, f"descriptor {fd} is not open for writing")
        node = descriptor.file
        assert node is not None  # only files are writable
        if size > MAX_FILE_SIZE:
            raise WasiError(ErrorCode.FILE_TOO_LARGE, "larger than the largest file size")
        contents = node.data
        try:
            if size < len(contents):
                del contents[size:]
            else:
                contents.extend(bytes(size - len(contents)))
        except MemoryError:
            raise WasiError(ErrorCode.INSUFFICIENT_SPACE, "out of memory") from None
        node.mtime = node.ctime = _now()

    # -- metadata ------------------------------------------------------------------------------

    def stat(self, fd: int) -> DescriptorStat:
        descriptor = self._descriptors.get(fd)
        if descriptor is None:
            raise _bad_descriptor(fd)
        node = descriptor.node
        return _stat_of(node, self._device)

    def stat_at(self, fd: int, path_flags: int, path: str) -> DescriptorStat:
        node = self._lookup(fd, path_flags, path)
        return _stat_of(node, self._device)

    def set_times(
        self,
        fd: int,
        data_access_timestamp: NewTimestamp,
        data_modification_timestamp: NewTimestamp,
    ) -> None:
        _set_times(self._node(fd), data_access_timestamp, data_modification_timestamp)

    def set_times_at(
        self,
        fd: int,
        path_flags: int,
        path: str,
        data_access_timestamp: NewTimestamp,
        data_modification_timestamp: NewTimestamp,
    ) -> None:
        if (
            data_access_timestamp is None
            and data_modification_timestamp is None
            and not int(path_flags) & _FOLLOW
            and not path.endswith("/")
        ):
            # Nothing to change: utimensat returns before it looks at the final name (as the
            # host backend and cap-std get there, only its parent directories are resolved).
            stack, last, _ = self._parent(self._directory(fd), path, _Walk())
            if last == "..":
                self._dot(stack, last)
            return
        node = self._lookup(fd, path_flags, path)
        _set_times(node, data_access_timestamp, data_modification_timestamp)

    # -- directories ---------------------------------------------------------------------------

    def read_directory(self, fd: int) -> list[DirectoryEntry]:
        node = self._node(fd)
        if not isinstance(node, _Directory):
            raise WasiError(ErrorCode.NOT_DIRECTORY, f"descriptor {fd} is not a directory")
        node.atime = _now()
        # Names copied from a host may not be UTF-8; like the host backend, refuse to list them.
        return [
            DirectoryEntry(child.kind, _check_utf8(name), child.inode)
            for name, child in sorted(node.entries.items())
        ]

    def create_directory_at(self, fd: int, path: str) -> None:
        stack, last, trailing = self._parent(self._directory(fd), path, _Walk())
        parent = self._creatable(stack, last, trailing, "directory")
        now = _now()
        parent.entries[last] = _Directory(self._inode(), now, parent)
        parent.link_count += 1
        _modified(parent, now)

    def remove_directory_at(self, fd: int, path: str) -> None:
        stack, last, _ = self._parent(self._directory(fd), path, _Walk())
        if last == ".":
            raise WasiError(ErrorCode.INVALID, "cannot remove '.'")
        if last == "..":
            self._dot(stack, last)
            raise WasiError(ErrorCode.NOT_EMPTY, "cannot remove '..'")
        parent = stack[-1]
        node = parent.entries.get(last)
        if node is None:
            raise _missing(last)
        if not isinstance(node, _Directory):
            raise WasiError(ErrorCode.NOT_DIRECTORY, f"{last!r} is not a directory")
        if node.entries:
            raise WasiError(ErrorCode.NOT_EMPTY, f"{last!r} is not empty")
        del parent.entries[last]
        parent.link_count -= 1
        now = _now()
        _modified(parent, now)
        _remove_directory_node(node, now)

    def unlink_file_at(self, fd: int, path: str) -> None:
        stack, last, trailing = self._parent(self._directory(fd), path, _Walk())
        if last in _DOTS:
            self._dot(stack, last)
            raise WasiError(ErrorCode.IS_DIRECTORY, f"{last!r} is a directory")
        parent = stack[-1]
        node = parent.entries.get(last)
        if node is None:
            raise _missing(last)
        if node.__class__ is _Directory:
            raise WasiError(ErrorCode.IS_DIRECTORY, f"{last!r} is a directory")
        if trailing:
            raise WasiError(ErrorCode.NOT_DIRECTORY, f"{last!r} is not a directory")
        del parent.entries[last]
        now = _now()
        node.link_count -= 1
        node.ctime = now
        _modified(parent, now)

    def rename_at(self, fd: int, old_path: str, new_fd: int, new_path: str) -> None:
        old_stack, old_last, old_trailing = self._parent(self._directory(fd), old_path, _Walk())
        new_stack, new_last, new_trailing = self._parent(self._directory(new_fd), new_path, _Walk())
        for stack, last in ((old_stack, old_last), (new_stack, new_last)):
            if last in _DOTS:
                self._dot(stack, last)
                raise WasiError(ErrorCode.BUSY, f"cannot rename {last!r}")
        old_parent = old_stack[-1]
        new_parent = new_stack[-1]
        node = old_parent.entries.get(old_last)
        if node is None:
            raise _missing(old_last)
        target = new_parent.entries.get(new_last)
        if target is None:
            _check_name(new_last)
        moving_directory = isinstance(node, _Directory)
        if not moving_directory and (old_trailing or new_trailing):
            raise WasiError(ErrorCode.NOT_DIRECTORY, f"{old_last!r} is not a directory")
        if isinstance(node, _Directory) and _is_within(node, new_parent):
            raise WasiError(ErrorCode.INVALID, "cannot move a directory beneath itself")
        if isinstance(target, _Directory) and _is_within(target, old_parent):
            raise WasiError(ErrorCode.NOT_EMPTY, f"{new_last!r} contains {old_last!r}")
        if target is node:
            return  # two names of one file: POSIX says rename does nothing
        if target is None:
            if new_parent.link_count == 0:
                raise WasiError(ErrorCode.NO_ENTRY, "the target directory has been removed")
        elif isinstance(target, _Directory):
            if not moving_directory:
                raise WasiError(ErrorCode.IS_DIRECTORY, f"{new_last!r} is a directory")
            if target.entries:
                raise WasiError(ErrorCode.NOT_EMPTY, f"{new_last!r} is not empty")
        elif moving_directory:
            raise WasiError(ErrorCode.NOT_DIRECTORY, f"{new_last!r} is not a directory")

        now = _now()
        del old_parent.entries[old_last]
        if isinstance(target, _Directory):
            new_parent.link_count -= 1
            _remove_directory_node(target, now)
        elif target is not None:
            target.link_count -= 1
            target.ctime = now
        new_parent.entries[new_last] = node
        if isinstance(node, _Directory):
            old_parent.link_count -= 1
            new_parent.link_count += 1
            node.parent = new_parent
        node.ctime = now
        _modified(old_parent, now)
        _modified(new_parent, now)

    # -- links ---------------------------------------------------------------------------------

    def symlink_at(self, fd: int, old_path: str, new_path: str) -> None:
        start = self._directory(fd)
        if old_path.startswith("/"):
            # As cap-std does: no link that would lead out of the mount for anyone following it.
            raise WasiError(ErrorCode.NOT_PERMITTED, f"absolute symlink target {old_path!r}")
        if "\0" in old_path:
            raise WasiError(ErrorCode.INVALID, "symlink target contains a NUL byte")
        _check_utf8(old_path)
        if not old_path:
            raise WasiError(ErrorCode.NO_ENTRY, "empty symlink target")
        if len(_encoded(old_path)) >= PATH_MAX:
            raise WasiError(ErrorCode.NAME_TOO_LONG, "symlink target is too long")
        stack, last, trailing = self._parent(start, new_path, _Walk())
        parent = self._creatable(stack, last, trailing, "symlink")
        now = _now()
        parent.entries[last] = _Symlink(self._inode(), now, old_path)
        _modified(parent, now)

    def readlink_at(self, fd: int, path: str) -> str:
        node = self._lookup(fd, 0, path)
        if not isinstance(node, _Symlink):
            raise WasiError(ErrorCode.INVALID, f"{path!r} is not a symlink")
        node.atime = _now()
        return _check_utf8(node.target)

    def link_at(
        self, fd: int, old_path_flags: int, old_path: str, new_fd: int, new_path: str
    ) -> None:
        node = self._lookup(fd, old_path_flags, old_path)
        stack, last, trailing = self._parent(self._directory(new_fd), new_path, _Walk())
        parent = self._creatable(stack, last, trailing, "link")
        if isinstance(node, _Directory):
            raise WasiError(ErrorCode.NOT_PERMITTED, "cannot hard-link a directory")
        now = _now()
        parent.entries[last] = node
        node.link_count += 1
        node.ctime = now
        _modified(parent, now)

    # -- no-ops with checks --------------------------------------------------------------------

    def sync(self, fd: int) -> None:
        self._node(fd)

    def sync_data(self, fd: int) -> None:
        self._node(fd)

    def advise(self, fd: int, offset: int, length: int, advice: Advice) -> None:
        self._node(fd)
        if not (0 <= offset <= MAX_FILE_SIZE and 0 <= length <= MAX_FILE_SIZE):
            raise WasiError(ErrorCode.INVALID, "offset or length out of range")


def _write(node: _File, data: bytes, offset: int) -> int:
    if offset > MAX_FILE_SIZE:
        raise WasiError(ErrorCode.FILE_TOO_LARGE, "offset past the largest file size")
    if not data:
        return 0
    end = offset + len(data)
    if end > MAX_FILE_SIZE:
        # Linux's answer when offset + length overflows its file offset type.
        raise WasiError(ErrorCode.INVALID, "write would end past the largest file size")
    contents = node.data
    gap = offset - len(contents)
    try:
        if gap > 0:
            contents.extend(bytes(gap))
        contents[offset:end] = data
    except MemoryError:
        raise WasiError(ErrorCode.INSUFFICIENT_SPACE, "out of memory") from None
    node.mtime = node.ctime = _now()
    return len(data)


def _stat_of(node: _Node, device: int) -> DescriptorStat:
    # tuple.__new__ directly: NamedTuple's generated __new__ would double the cost of `stat`.
    return tuple.__new__(
        DescriptorStat,
        (
            device,
            node.inode,
            node.kind,
            node.link_count,
            node.size(),
            node.atime,
            node.mtime,
            node.ctime,
        ),
    )


def _check_name(name: str) -> None:
    if len(name) > NAME_MAX // 4 and len(_encoded(name)) > NAME_MAX:
        raise WasiError(ErrorCode.NAME_TOO_LONG, f"name is longer than {NAME_MAX} bytes")


def _remove_directory_node(node: _Directory, now: int) -> None:
    node.link_count = 0
    node.parent = None
    node.ctime = now


def _set_times(node: _Node, access: NewTimestamp, modification: NewTimestamp) -> None:
    if access is None and modification is None:
        return  # utimensat with both omitted changes nothing, not even the status time
    now = _now()
    node.atime = _new_time(access, node.atime, now)
    node.mtime = _new_time(modification, node.mtime, now)
    node.ctime = now


def _read_host_file(path: str) -> bytes:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        # Copying should not even leave an access time behind, where the host lets us.
        fd = os.open(path, flags | os.O_NOATIME)
    except PermissionError:
        fd = os.open(path, flags)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
