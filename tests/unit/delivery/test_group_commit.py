"""The group commit of renames into new/: no caller returns before a fsync of the directory that began
after its rename, and the renames made while one fsync runs share the next one. Real files and real
fsyncs; the fsync is held at a gate (a threading.Event) so the order is observed, not timed."""

import asyncio
import os
import threading
from pathlib import Path

from services.delivery.group_commit import GroupCommit
from shared.maildir import fsync_dir


class GatedSync:
    """fsync_dir that records what the directory held when it began, and waits at a gate before returning."""

    def __init__(self) -> None:
        self.started = threading.Semaphore(0)
        self.gate = threading.Event()
        self.listings: list[set[str]] = []
        self.fail: OSError | None = None

    def __call__(self, directory: Path) -> None:
        self.listings.append(set(os.listdir(directory)))
        self.started.release()
        self.gate.wait(10)
        if self.fail is not None:
            raise self.fail
        fsync_dir(directory)


def _files(tmp_path: Path, names: list[str]) -> tuple[Path, Path]:
    source, target = tmp_path / "tmp", tmp_path / "new"
    source.mkdir(parents=True)
    target.mkdir()
    for name in names:
        (source / name).write_bytes(b"x")
    return source, target


async def _until_started(sync: GatedSync) -> None:
    await asyncio.to_thread(sync.started.acquire, True, 10)


async def test_no_rename_returns_before_the_fsync_that_covers_it(tmp_path: Path) -> None:
    first, later = ["a"], [f"m{i}" for i in range(10)]
    source, target = _files(tmp_path, first + later)
    sync = GatedSync()
    commits = GroupCommit(sync)

    running = asyncio.create_task(commits.rename(source / "a", target / "a"))
    await _until_started(sync)
    # Renamed, its fsync under way: the caller (who acknowledges its entry next) is still waiting.
    assert (target / "a").exists()
    waiting = [asyncio.create_task(commits.rename(source / n, target / n)) for n in later]
    await asyncio.sleep(0.05)  # let them queue behind the running fsync
    assert not running.done() and not any(t.done() for t in waiting)

    sync.gate.set()
    await asyncio.wait_for(asyncio.gather(running, *waiting), 10)
    # One fsync for "a", one for the ten that arrived while it ran, begun after all their renames.
    assert sync.listings == [{"a"}, {"a", *later}]
    assert sorted(os.listdir(target)) == sorted(first + later)


async def test_a_failed_fsync_fails_every_rename_of_its_group(tmp_path: Path) -> None:
    names = ["a", "b", "c"]
    source, target = _files(tmp_path, names)
    sync = GatedSync()
    sync.fail = OSError(5, "Input/output error")
    sync.gate.set()
    commits = GroupCommit(sync)

    results = await asyncio.gather(
        *(commits.rename(source / n, target / n) for n in names), return_exceptions=True
    )
    assert all(isinstance(r, OSError) for r in results), results


async def test_a_failed_rename_fails_only_its_caller(tmp_path: Path) -> None:
    source, target = _files(tmp_path, ["a"])
    sync = GatedSync()
    sync.gate.set()
    commits = GroupCommit(sync)

    good = commits.rename(source / "a", target / "a")
    missing = commits.rename(source / "gone", target / "gone")
    results = await asyncio.gather(good, missing, return_exceptions=True)
    assert results[0] is None
    assert isinstance(results[1], FileNotFoundError)
    assert sync.listings == [{"a"}]


async def test_each_directory_gets_its_own_fsync(tmp_path: Path) -> None:
    sync = GatedSync()
    sync.gate.set()
    commits = GroupCommit(sync)
    calls = []
    for i in range(2):
        source, target = _files(tmp_path / f"box{i}", ["f"])
        calls.append(commits.rename(source / "f", target / "f"))
    await asyncio.gather(*calls)
    assert sync.listings == [{"f"}, {"f"}]
