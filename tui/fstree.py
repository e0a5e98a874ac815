"""The guest's filesystem as it stood at a given call, rebuilt from the trace's events alone.

`FsState` is what a trace tells about the guest's filesystem after some number of events: the
paths known to exist (type, size, inode, symlink target) and the descriptors open on them. It is
learnt, not read from any disk, so it holds only what the guest touched: a directory appears with
its entries once the guest listed it, a file's size once the guest stat-ed, truncated, wrote or
read it to its end. A size learnt from a write, or from a read that filled its buffer, is a lower
bound (`Node.size_exact` is False).

Paths are lexical: a descriptor's path is joined with the relative path of a call and normalised,
without following symlinks (the trace does not say where an intermediate link pointed). A
preopen's guest path is made absolute ("data" and "/data" are the same root).

`FsTimeline` answers "the state after event N" for any N by replaying from the nearest checkpoint
(a copy of the state kept every `every` events, made on the way), so moving back and forth in a
long trace costs at most `every` events of replay, and its memory stays bounded by thinning the
checkpoints out when there are too many.
"""

from __future__ import annotations

import functools
import posixpath
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from tracer.backend import DescriptorStat, DescriptorType, DirectoryEntry, OpenFlags, PathFlags
from tracer.errors import ErrorCode
from tracer.trace.reader import Event

# The first descriptor a Sandbox hands out; preopens get 3, 4, ... in mount order. Used only
# until the trace's own `preopens` call says which descriptor each root has.
FIRST_PREOPEN = 3
DEFAULT_EVERY = 10_000
MAX_CHECKPOINTS = 64
PROGRESS_EVERY = 8192
# Flag bits as plain ints: `int & IntFlag` goes through enum machinery, which is most of the cost
# of replaying a million events.
_CREATE = int(OpenFlags.CREATE)
_DIRECTORY = int(OpenFlags.DIRECTORY)
_EXCLUSIVE = int(OpenFlags.EXCLUSIVE)
_TRUNCATE = int(OpenFlags.TRUNCATE)
_FOLLOW = int(PathFlags.SYMLINK_FOLLOW)


class EventSource(Protocol):
    """What the timeline reads: a `Trace`, or the calls of a run in progress."""

    def __len__(self) -> int: ...

    def events(self, start: int = 0, stop: int | None = None) -> Iterator[Event]: ...


class Node(NamedTuple):
    """One path known to exist."""

    type: DescriptorType
    size: int | None = None  # None until learnt
    size_exact: bool = False  # False: `size` is only a lower bound
    inode: int | None = None
    target: str | None = None  # a symlink's text


class OpenDescriptor(NamedTuple):
    path: str
    opened_at: int  # the event that opened it; -1 for a preopen
    flags: int  # descriptor-flags bits it was opened with


@functools.lru_cache(maxsize=1 << 16)
def _join(base: str, path: str) -> str:
    # Guests name the same few paths again and again; joining is a good part of a replay's cost.
    return posixpath.normpath(posixpath.join(base, path))


def root_path(guest_path: str) -> str:
    """A preopen's guest path as the absolute, normalised path the tree uses for it."""
    return posixpath.normpath("/" + guest_path.lstrip("/")) if guest_path else "/"


@dataclass
class FsState:
    """The filesystem after `applied` events. `apply` moves it on by one event."""

    roots: list[str] = field(default_factory=list)
    nodes: dict[str, Node] = field(default_factory=dict)
    descriptors: dict[int, OpenDescriptor] = field(default_factory=dict)
    applied: int = 0

    @classmethod
    def initial(cls, preopens: Sequence[str]) -> FsState:
        """Before any event: each preopen is a directory, on descriptors 3, 4, ... in order."""
        state = cls()
        for i, guest_path in enumerate(preopens):
            state._add_root(FIRST_PREOPEN + i, guest_path)
        return state

    def copy(self) -> FsState:
        # Node and OpenDescriptor are immutable, so copying the dicts copies the state.
        return FsState(list(self.roots), dict(self.nodes), dict(self.descriptors), self.applied)

    # -- questions -----------------------------------------------------------------------------
    def children(self) -> dict[str, list[str]]:
        """Every known path's children (full paths, sorted), for drawing the tree."""
        out: dict[str, list[str]] = {}
        for path in sorted(self.nodes):
            parent = posixpath.dirname(path)
            if parent != path:
                out.setdefault(parent, []).append(path)
        return out

    def open_on(self) -> dict[str, list[int]]:
        """Open descriptors by the path they were opened on (preopens included)."""
        out: dict[str, list[int]] = {}
        for fd, desc in sorted(self.descriptors.items()):
            out.setdefault(desc.path, []).append(fd)
        return out

    def path_of(self, fd: int) -> str | None:
        desc = self.descriptors.get(fd)
        return None if desc is None else desc.path

    def resolve(self, fd: int, path: str) -> str | None:
        """The path a call names with `fd` and `path`, or None if `fd` is not known to be open."""
        base = self.path_of(fd)
        if base is None:
            return None
        return _join(base, path) if path else base

    def paths_of(self, event: Event) -> list[str]:
        """The paths `event` works on, resolved in this state (for highlighting them)."""
        args = event.arguments
        if "fd" not in args:
            return []
        fd = args["fd"]
        found: list[str | None] = []
        if "path" in args:
            found.append(self.resolve(fd, args["path"]))
        if "old_path" in args and event.op.name != "symlink_at":  # symlink_at's is link text
            found.append(self.resolve(fd, args["old_path"]))
        if "new_path" in args:
            found.append(self.resolve(args.get("new_fd", fd), args["new_path"]))
        if not found:
            found.append(self.path_of(fd))
        return list(dict.fromkeys(p for p in found if p is not None))

    # -- moving on -----------------------------------------------------------------------------
    def apply(self, event: Event) -> None:
        handler = _HANDLERS.get(event.op.name)
        if handler is not None:
            handler(self, event)
        self.applied = event.seq + 1

    def _add_root(self, fd: int, guest_path: str) -> None:
        root = root_path(guest_path)
        if root not in self.roots:
            self.roots.append(root)
        self.descriptors[fd] = OpenDescriptor(root, -1, 0)
        if root not in self.nodes:
            self.nodes[root] = Node(DescriptorType.DIRECTORY)

    def _root_of(self, path: str) -> str | None:
        best: str | None = None
        for root in self.roots:
            if (path == root or path.startswith(root.rstrip("/") + "/")) and (
                best is None or len(root) > len(best)
            ):
                best = root
        return best

    def _put(self, path: str, node: Node) -> None:
        """Record `path`, and its parents up to its root as directories."""
        self.nodes[path] = node
        root = self._root_of(path)
        parent = posixpath.dirname(path)
        while root is not None and path != root and parent not in self.nodes:
            self.nodes[parent] = Node(DescriptorType.DIRECTORY)
            path, parent = parent, posixpath.dirname(parent)

    def _remove(self, path: str) -> None:
        """Forget `path` and everything beneath it (a root stays: it is the mount itself)."""
        if path in self.roots or path not in self.nodes:
            # Every known path's parents are known, so an unknown path has nothing beneath.
            return
        prefix = path.rstrip("/") + "/"
        for p in [p for p in self.nodes if p == path or p.startswith(prefix)]:
            del self.nodes[p]

    def _node_of_fd(self, fd: int) -> tuple[str, Node] | None:
        path = self.path_of(fd)
        if path is None:
            return None
        node = self.nodes.get(path)
        if node is None:
            # Open on a path the tree does not hold (it was removed): nothing to update.
            return None
        return path, node

    def _set_stat(self, path: str, stat: DescriptorStat) -> None:
        old = self.nodes.get(path)
        target = old.target if old is not None else None
        self._put(path, Node(stat.type, stat.size, True, stat.inode, target))


# -- one handler per operation that tells something about the tree ------------------------------
def _open_at(state: FsState, e: Event) -> None:
    fd, path_flags, path, open_flags, flags = e.args
    target = state.resolve(fd, path)
    if target is None:
        return
    if e.error is not None:
        if e.error is ErrorCode.NO_ENTRY:
            state._remove(target)
        elif e.error is ErrorCode.EXIST and target not in state.nodes:
            state._put(target, Node(DescriptorType.UNKNOWN))
        return
    old = state.nodes.get(target)
    if open_flags & _DIRECTORY:
        kind = DescriptorType.DIRECTORY
    elif old is not None and not (
        old.type is DescriptorType.SYMBOLIC_LINK and path_flags & _FOLLOW
    ):
        kind = old.type
    elif open_flags & _CREATE:
        kind = DescriptorType.REGULAR_FILE
    else:
        kind = DescriptorType.UNKNOWN
    node = Node(kind) if old is None else old if old.type is kind else old._replace(type=kind)
    if open_flags & _TRUNCATE or (old is None and open_flags & _CREATE and open_flags & _EXCLUSIVE):
        node = node._replace(size=0, size_exact=True)
    if node != old:
        state._put(target, node)
    state.descriptors[e.result] = OpenDescriptor(target, e.seq, flags)


def _grow(state: FsState, fd: int, end: int, exact: bool) -> None:
    """The file on `fd` is at least `end` bytes long (exactly, when `exact`)."""
    found = state._node_of_fd(fd)
    if found is None:
        return
    path, old = found
    node = old
    if exact:
        if node.size != end or not node.size_exact:
            node = node._replace(size=end, size_exact=True)
    elif node.size is None or node.size < end:
        node = node._replace(size=end)
    if node.type is DescriptorType.UNKNOWN:
        node = node._replace(type=DescriptorType.REGULAR_FILE)
    if node is not old:
        state.nodes[path] = node


def _read(state: FsState, e: Event) -> None:
    fd, length, offset = e.args
    if e.error is None and length > 0:
        data: bytes = e.result
        # A short read stops at the end of the file, so it tells the size exactly.
        _grow(state, fd, offset + len(data), exact=len(data) < length)


def _write(state: FsState, e: Event) -> None:
    fd, _data, offset = e.args
    if e.error is None:
        found = state._node_of_fd(fd)
        exact = found is not None and found[1].size_exact
        end = offset + e.result
        if found is not None and exact and found[1].size is not None:
            end = max(end, found[1].size)
        _grow(state, fd, end, exact)


def _append(state: FsState, e: Event) -> None:
    fd = e.args[0]
    if e.error is None:
        found = state._node_of_fd(fd)
        if found is None:
            return
        size = found[1].size
        _grow(state, fd, (size or 0) + e.result, exact=found[1].size_exact)


def _set_size(state: FsState, e: Event) -> None:
    fd, size = e.args
    if e.error is None:
        _grow(state, fd, size, exact=True)


def _stat(state: FsState, e: Event) -> None:
    if e.error is None:
        path = state.path_of(e.args[0])
        if path is not None:
            state._set_stat(path, e.result)


def _stat_at(state: FsState, e: Event) -> None:
    fd, path_flags, path = e.args
    target = state.resolve(fd, path)
    if target is None:
        return
    if e.error is ErrorCode.NO_ENTRY:
        state._remove(target)
    elif e.error is None:
        old = state.nodes.get(target)
        if old is not None and old.type is DescriptorType.SYMBOLIC_LINK and path_flags & _FOLLOW:
            return  # the stat describes where the link points, not the link
        state._set_stat(target, e.result)


def _read_directory(state: FsState, e: Event) -> None:
    if e.error is not None:
        return
    directory = state.path_of(e.args[0])
    if directory is None:
        return
    entries: list[DirectoryEntry] = e.result
    state._put(directory, state.nodes.get(directory, Node(DescriptorType.DIRECTORY)))
    listed = set()
    for entry in entries:
        child = posixpath.join(directory, entry.name)
        listed.add(child)
        old = state.nodes.get(child)
        if old is None or old.type is not entry.type:
            state.nodes[child] = Node(entry.type, inode=entry.inode)
        elif old.inode != entry.inode:
            state.nodes[child] = old._replace(inode=entry.inode)
    # A listing is complete: what was known beneath and is not listed is gone.
    for child in [p for p in state.nodes if posixpath.dirname(p) == directory and p != directory]:
        if child not in listed:
            state._remove(child)


def _create_directory_at(state: FsState, e: Event) -> None:
    fd, path = e.args
    target = state.resolve(fd, path)
    if target is None:
        return
    if e.error is None:
        state._put(target, Node(DescriptorType.DIRECTORY))
    elif e.error is ErrorCode.EXIST and target not in state.nodes:
        state._put(target, Node(DescriptorType.UNKNOWN))


def _remove_at(state: FsState, e: Event) -> None:
    fd, path = e.args
    target = state.resolve(fd, path)
    if target is not None and (e.error is None or e.error is ErrorCode.NO_ENTRY):
        state._remove(target)


def _rename_at(state: FsState, e: Event) -> None:
    fd, old_path, new_fd, new_path = e.args
    if e.error is not None:
        return
    old = state.resolve(fd, old_path)
    new = state.resolve(new_fd, new_path)
    if old is None or new is None or old == new:
        return
    prefix = old.rstrip("/") + "/"
    moved = {p: n for p, n in state.nodes.items() if p == old or p.startswith(prefix)}
    state._remove(new)
    for p in moved:
        del state.nodes[p]
    if not moved:
        moved = {old: Node(DescriptorType.UNKNOWN)}
    for p, node in moved.items():
        state._put(new + p[len(old) :], node)
    # Descriptors follow the file they are open on.
    for d, desc in list(state.descriptors.items()):
        if desc.path == old or desc.path.startswith(prefix):
            state.descriptors[d] = desc._replace(path=new + desc.path[len(old) :])


def _symlink_at(state: FsState, e: Event) -> None:
    fd, old_path, new_path = e.args
    target = state.resolve(fd, new_path)
    if target is not None and e.error is None:
        state._put(
            target, Node(DescriptorType.SYMBOLIC_LINK, len(old_path.encode()), True, None, old_path)
        )


def _readlink_at(state: FsState, e: Event) -> None:
    fd, path = e.args
    target = state.resolve(fd, path)
    if target is not None and e.error is None:
        old = state.nodes.get(target, Node(DescriptorType.SYMBOLIC_LINK))
        state._put(target, old._replace(type=DescriptorType.SYMBOLIC_LINK, target=e.result))


def _link_at(state: FsState, e: Event) -> None:
    fd, _flags, old_path, new_fd, new_path = e.args
    old = state.resolve(fd, old_path)
    new = state.resolve(new_fd, new_path)
    if old is None or new is None or e.error is not None:
        return
    state._put(new, state.nodes.get(old, Node(DescriptorType.REGULAR_FILE)))


def _close(state: FsState, e: Event) -> None:
    # A descriptor is gone after close even when close reports an error (as in POSIX).
    fd = e.args[0]
    desc = state.descriptors.get(fd)
    if desc is not None and desc.opened_at >= 0:
        del state.descriptors[fd]


def _preopens(state: FsState, e: Event) -> None:
    if e.error is None:
        # The trace's own word on which descriptor each root has replaces the guess.
        for fd in [fd for fd, d in state.descriptors.items() if d.opened_at < 0]:
            del state.descriptors[fd]
        for fd, guest_path in e.result:
            state._add_root(fd, guest_path)


_HANDLERS: dict[str, Callable[[FsState, Event], None]] = {
    "preopens": _preopens,
    "open_at": _open_at,
    "read": _read,
    "write": _write,
    "append": _append,
    "set_size": _set_size,
    "stat": _stat,
    "stat_at": _stat_at,
    "read_directory": _read_directory,
    "create_directory_at": _create_directory_at,
    "remove_directory_at": _remove_at,
    "unlink_file_at": _remove_at,
    "rename_at": _rename_at,
    "symlink_at": _symlink_at,
    "readlink_at": _readlink_at,
    "link_at": _link_at,
    "close": _close,
}


def replay_events(events: Iterable[Event], preopens: Sequence[str]) -> FsState:
    """The state after `events` (from the first event of a run), from scratch."""
    state = FsState.initial(preopens)
    for event in events:
        state.apply(event)
    return state


class FsTimeline:
    """The state after any event of `source`, rebuilt from the nearest checkpoint.

    Thread-safe: the TUI asks from worker threads, one question at a time under a lock.
    """

    def __init__(
        self,
        source: EventSource,
        preopens: Sequence[str],
        every: int = DEFAULT_EVERY,
        max_checkpoints: int = MAX_CHECKPOINTS,
    ) -> None:
        if every < 1:
            raise ValueError("checkpoints must be at least one event apart")
        self.source = source
        self.every = every
        self.max_checkpoints = max_checkpoints
        # Keyed by the number of events applied; 0 is the state before the first event.
        self.checkpoints: dict[int, FsState] = {0: FsState.initial(preopens)}
        self._last: FsState | None = None
        self._lock = threading.Lock()
        self.replayed = 0  # events applied in total, for tests and the benchmark

    def state_at(self, seq: int, progress: Callable[[int, int], None] | None = None) -> FsState:
        """The filesystem once event `seq` has been made (so -1 gives the initial state).

        `progress(done, to_do)` is called every `PROGRESS_EVERY` events replayed.
        """
        with self._lock:
            target = max(0, min(seq + 1, len(self.source)))
            base = max(k for k in self.checkpoints if k <= target)
            last = self._last
            if last is not None and base <= last.applied <= target:
                state = last
            else:
                state = self.checkpoints[base].copy()
            start = state.applied
            if start < target:
                for event in self.source.events(start, target):
                    state.apply(event)
                    self.replayed += 1
                    done = state.applied
                    if done % self.every == 0 and done not in self.checkpoints:
                        self._keep(state)
                    if progress is not None and (done - start) % PROGRESS_EVERY == 0:
                        progress(done - start, target - start)
            self._last = state
            return state.copy()

    def _keep(self, state: FsState) -> None:
        self.checkpoints[state.applied] = state.copy()
        if len(self.checkpoints) > self.max_checkpoints:
            # Too many: keep every other one, so memory stays bounded and gaps at most double.
            self.every *= 2
            self.checkpoints = {k: v for k, v in self.checkpoints.items() if k % self.every == 0}


def describe_node(node: Node) -> str:
    """`regular-file, 123 bytes` / `≥4096 bytes` / `-> target` for the tree's labels."""
    parts: list[str] = []
    if node.type is DescriptorType.SYMBOLIC_LINK:
        parts.append(f"-> {node.target}" if node.target is not None else "symlink")
    elif node.type is DescriptorType.UNKNOWN:
        parts.append("?")
    elif node.type is not DescriptorType.DIRECTORY and node.type is not (
        DescriptorType.REGULAR_FILE
    ):
        parts.append(node.type.value)
    if node.type is not DescriptorType.DIRECTORY and node.size is not None:
        unit = "byte" if node.size == 1 else "bytes"
        parts.append(f"{'' if node.size_exact else '≥'}{node.size} {unit}")
    return ", ".join(parts)
