"""Folders held for life: the next run removes those whose maker is gone, never a live
one, and a half-removed or half-made one is not left forever."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from ticketsim.core import _owned

if TYPE_CHECKING:
    from pathlib import Path

NAME = re.compile(r"ours\.\w+")


def _made(root: Path, name: str, *, life: bool = True) -> Path:
    folder = root / name
    (folder / "data" / "base").mkdir(parents=True)
    (folder / "data" / "base" / "1").write_bytes(b"x" * 100)
    (folder / "run.sock").write_text("")
    if life:
        (folder / _owned.LIFE).write_text("")
    return folder


def test_a_held_folder_is_never_swept_and_its_maker_removes_it_whole(tmp_path: Path) -> None:
    folder = tmp_path / "ours.live"
    folder.mkdir()
    fd = _owned.hold(folder)
    (folder / "data").mkdir()
    (folder / "data" / "file").write_text("x")
    assert _owned.sweep(NAME, tmp_path) == []
    assert folder.exists()
    assert _owned.remove(folder, fd)
    assert not folder.exists()


def test_a_folder_whose_maker_died_is_swept(tmp_path: Path) -> None:
    # The maker is another process, SIGKILLed: its lock goes with it.
    folder = tmp_path / "ours.dead"
    folder.mkdir()
    maker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from ticketsim.core import _owned; "
            "_owned.hold(sys.argv[1]); print('held', flush=True); time.sleep(60)",
            str(folder),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert maker.stdout is not None
        assert maker.stdout.readline().strip() == "held"
        assert _owned.sweep(NAME, tmp_path) == []  # alive: not ours to remove
    finally:
        maker.kill()
        maker.communicate()
    assert _owned.sweep(NAME, tmp_path) == [folder]
    assert not folder.exists()


def test_a_folder_left_without_its_life_file_is_swept_once_it_is_old(tmp_path: Path) -> None:
    """A maker killed before its life file existed, or a removal cut short after it went,
    leaves a folder no lock can speak for: after a grace period, it is taken as left."""
    fresh = _made(tmp_path, "ours.fresh", life=False)
    old = _made(tmp_path, "ours.old", life=False)
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    assert _owned.sweep(NAME, tmp_path) == [old]
    assert fresh.exists()
    assert not old.exists()


def test_someone_elses_folder_is_never_touched(tmp_path: Path) -> None:
    other = _made(tmp_path, "theirs.old")
    an_hour_ago = time.time() - 3600
    os.utime(other, (an_hour_ago, an_hour_ago))
    assert _owned.sweep(NAME, tmp_path) == []
    assert (other / "data" / "base" / "1").exists()


def test_a_life_file_made_and_not_yet_locked_is_a_folder_being_made(tmp_path: Path) -> None:
    """Its maker creates ``alive.new``, then locks it: a sweep between the two must not
    take the folder from it. Once the folder is old, its maker is taken as dead."""
    being_made = _made(tmp_path, "ours.making", life=False)
    (being_made / f"{_owned.LIFE}.new").write_text("")
    left = _made(tmp_path, "ours.left", life=False)
    (left / f"{_owned.LIFE}.new").write_text("")
    an_hour_ago = time.time() - 3600
    os.utime(left, (an_hour_ago, an_hour_ago))
    assert _owned.sweep(NAME, tmp_path) == [left]
    assert (being_made / "data" / "base" / "1").exists()
