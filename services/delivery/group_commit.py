"""Renames into `new/` made durable in groups: one worker-thread trip and one directory fsync per group.

A file is delivered once its rename into `new/` is durable, i.e. once `new/` has been fsynced *after* the
rename. Deliveries into the same Maildir at nearly the same moment (a burst to a few users) would each
fsync `new/`; one fsync started after all of their renames makes every one of them durable. So the renames
for one directory are queued here: while a group is being renamed and synced, the next group collects
whatever arrives, and starts as soon as the running one ends (no timer: a lone delivery waits for
nothing). Each caller's `rename` returns only once the fsync covering its rename has returned, and raises
if its rename or that fsync failed: so the caller acknowledges its stream entry only after its directory
fsync, exactly as with a fsync of its own (Postfix and Dovecot fsync per file; this is the group commit of
databases applied to the directory).
"""

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from shared.maildir import fsync_dir


@dataclass
class _Rename:
    source: Path
    target: Path
    done: asyncio.Future[None]


@dataclass
class _Directory:
    waiting: list[_Rename] = field(default_factory=list)
    """Renames queued for the next group (they start once the running group has ended)."""
    running: asyncio.Task[None] | None = None
    """The task renaming and syncing groups while any are queued (referenced so it is not collected)."""


class GroupCommit:
    """Renames into directories, each group of one directory followed by one fsync of that directory."""

    def __init__(self, sync: Callable[[Path], None] = fsync_dir) -> None:
        self._sync = sync
        self._directories: dict[Path, _Directory] = {}

    async def rename(self, source: Path, target: Path) -> None:
        """`os.rename(source, target)`, returning once a fsync of `target`'s directory begun after the rename
        has returned (raising the rename's or that fsync's error)."""
        directory = target.parent
        state = self._directories.setdefault(directory, _Directory())
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # A caller that gives up (cancelled) must not leave an error nobody retrieves.
        done.add_done_callback(lambda f: f.cancelled() or f.exception())
        state.waiting.append(_Rename(source, target, done))
        if state.running is None:
            state.running = asyncio.get_running_loop().create_task(self._run(directory, state))
        # Shielded: the group goes on for the others (and for this file) if this caller is cancelled.
        await asyncio.shield(done)

    async def _run(self, directory: Path, state: _Directory) -> None:
        try:
            while state.waiting:
                group, state.waiting = state.waiting, []
                try:
                    errors = await asyncio.to_thread(self._rename_and_sync, directory, group)
                except BaseException as exc:  # the fsync failed: no rename of the group is durable
                    error = (
                        exc if isinstance(exc, Exception) else OSError(f"rename into {directory} interrupted")
                    )
                    for item in group:
                        if not item.done.done():
                            item.done.set_exception(error)
                    if error is not exc:
                        raise
                    continue
                for item, error in zip(group, errors, strict=True):
                    if item.done.done():
                        continue
                    if error is None:
                        item.done.set_result(None)
                    else:
                        item.done.set_exception(error)
        finally:
            # Left early (cancelled at shutdown): nobody may wait for a group that will not run.
            for item in state.waiting:
                if not item.done.done():
                    item.done.set_exception(OSError(f"rename into {directory} abandoned"))
            state.waiting = []
            state.running = None
            self._directories.pop(directory, None)

    def _rename_and_sync(self, directory: Path, group: list[_Rename]) -> list[BaseException | None]:
        """In the worker thread: every rename of the group, then one fsync of the directory (if any rename
        succeeded). Returns each rename's error, or None."""
        errors: list[BaseException | None] = []
        for item in group:
            try:
                os.rename(item.source, item.target)
            except Exception as exc:
                errors.append(exc)
            else:
                errors.append(None)
        if any(error is None for error in errors):
            self._sync(directory)
        return errors
