"""Watching the durable write sequence of a delivery: the system calls and Redis commands, in order.

A kill -9 cannot show a missing fsync (the page cache survives it; only a power cut loses it), so the
durability tests look at the sequence itself. `Recorder` wraps `os.write`, `os.fsync`, `os.rename` and
the Redis client's command and transaction calls, records each one after the real call returned, and
can stop the run right after (or, for a transaction, right before) a chosen step by raising `Crash`: the
deterministic stand-in for a process that dies there. The real code runs underneath; nothing is faked.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.asyncio.client import Pipeline, Redis

from shared import stream_cleanup


class Crash(Exception):
    """The process "dies" here: nothing after this step happens in this attempt."""


@dataclass(frozen=True)
class Event:
    kind: str
    """write, fsync, rename, command (one Redis command) or exec (a transaction / pipeline)."""
    path: str = ""
    """write/fsync: the file or directory; rename: the target."""
    source: str = ""
    """rename: the source."""
    commands: tuple[str, ...] = ()
    """command/exec: the Redis command names (upper case)."""
    key: str = ""
    """command: its first argument."""
    size: int = 0
    """write: bytes written."""


def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


@dataclass
class Recorder:
    events: list[Event] = field(default_factory=list)
    crash_after: Callable[[Event], bool] | None = None
    """Raise `Crash` once this returns True for a recorded event (the step itself did happen)."""
    crash_before_exec: Callable[[tuple[str, ...]], bool] | None = None
    """Raise `Crash` instead of sending a transaction whose commands make this return True."""
    fail_write: Callable[[str], bool] | None = None
    """Make `os.write` to a path for which this returns True fail with EIO."""

    def _record(self, event: Event) -> None:
        self.events.append(event)
        if self.crash_after is not None and self.crash_after(event):
            self.crash_after = None
            raise Crash(event)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real_write, real_fsync, real_rename = os.write, os.fsync, os.rename
        real_command, real_execute = Redis.execute_command, Pipeline.execute

        def write(fd: int, data: Any) -> int:
            path = _fd_path(fd)
            if self.fail_write is not None and self.fail_write(path):
                raise OSError(5, "Input/output error (injected)")
            written = real_write(fd, data)
            self._record(Event("write", path=path, size=written))
            return written

        def fsync(fd: int) -> None:
            path = _fd_path(fd)
            real_fsync(fd)
            self._record(Event("fsync", path=path))

        def rename(source: Any, target: Any, *args: Any, **kwargs: Any) -> None:
            real_rename(source, target, *args, **kwargs)
            self._record(Event("rename", path=os.fsdecode(target), source=os.fsdecode(source)))

        async def execute_command(client: Redis, *args: Any, **options: Any) -> Any:
            result = await real_command(client, *args, **options)
            key = args[1] if len(args) > 1 else ""
            self._record(
                Event(
                    "command",
                    commands=(command_name(args),),
                    key=key.decode() if isinstance(key, bytes) else str(key),
                )
            )
            return result

        async def execute(pipe: Pipeline, raise_on_error: bool = True) -> Any:
            names = tuple(command_name(args) for args, _options in pipe.command_stack)
            if self.crash_before_exec is not None and self.crash_before_exec(names):
                self.crash_before_exec = None
                await pipe.reset()
                raise Crash(names)
            stack = list(pipe.command_stack)
            result = await real_execute(pipe, raise_on_error)
            # A one-command transaction (the marker, the duplicate claim: made transactions so that a
            # replicated Redis confirms them, docs/ha.md) is known by its key, as a single command is.
            key = stack[0][0][1] if len(stack) == 1 and len(stack[0][0]) > 1 else ""
            self._record(
                Event("exec", commands=names, key=key.decode() if isinstance(key, bytes) else str(key))
            )
            return result

        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "rename", rename)
        monkeypatch.setattr(Redis, "execute_command", execute_command)
        monkeypatch.setattr(Pipeline, "execute", execute)

    def index(self, what: str, test: Callable[[Event], bool]) -> int:
        """The position of the first event passing `test`; fails the test naming `what` if none did."""
        for position, event in enumerate(self.events):
            if test(event):
                return position
        raise AssertionError(f"never happened: {what}\n" + "\n".join(map(str, self.events)))

    def last_index(self, what: str, test: Callable[[Event], bool]) -> int:
        found = [position for position, event in enumerate(self.events) if test(event)]
        if not found:
            raise AssertionError(f"never happened: {what}\n" + "\n".join(map(str, self.events)))
        return found[-1]


def command_name(args: tuple[Any, ...]) -> str:
    """The command's name; the bus's acknowledgement is a script (XACK + XDEL, shared.stream_cleanup)
    and is recorded as XACK, what it does first."""
    name = str(args[0]).upper()
    if name == "EVAL" and len(args) > 1 and args[1] == stream_cleanup.ACK:
        return "XACK"
    return name


def acknowledges(event: Event) -> bool:
    """A command or transaction that acknowledges a stream entry."""
    return "XACK" in event.commands
