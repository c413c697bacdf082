"""The exercises: each broken buyer fails its check with a hint at the step where it
breaks, and each right answer passes every interleaving (up to the bound)."""

from __future__ import annotations

import subprocess
import tempfile
import time
import uuid
from typing import TYPE_CHECKING

import pytest
from sales import script

from ticketsim.analysis.checker import Kind
from ticketsim.core.exits import ExitCode
from ticketsim.engine import yours
from ticketsim.errors import ConfigError
from ticketsim.search.exercises import EXERCISES, check_file, exercise

if TYPE_CHECKING:
    from pathlib import Path

NUMBERS = [item.number for item in EXERCISES]


def _student(tmp_path: Path, text: str) -> Path:
    # A module name of its own: the check imports the file by its name.
    path = tmp_path / f"student_{uuid.uuid4().hex}.py"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("number", NUMBERS)
def test_the_broken_buyer_fails_with_its_hint(tmp_path: Path, number: int) -> None:
    item = exercise(number)
    checked = check_file(number, _student(tmp_path, item.broken))
    assert checked.broken is not None
    assert checked.report is not None
    assert Kind.OVERSOLD in {v.kind for v in checked.report.violations}
    assert checked.hint in dict(item.hints).values()


def test_a_buy_of_the_wrong_shape_is_the_students_file_to_fix(tmp_path: Path) -> None:
    student = _student(tmp_path, "def buy(path):\n    return None\n")
    with pytest.raises(ConfigError) as caught:
        check_file(1, student)
    assert caught.value.name == "file"
    assert caught.value.value == str(student)
    assert caught.value.advice.startswith("its buy(): ticketsim calls it as buy(path, buyer)")
    assert "its parameters (path) cannot take" in caught.value.advice


@pytest.mark.parametrize("number", NUMBERS)
def test_the_right_answer_passes_every_interleaving(tmp_path: Path, number: int) -> None:
    checked = check_file(number, _student(tmp_path, exercise(number).right))
    assert checked.broken is None, checked.report.verdict if checked.report else ""
    assert checked.complete
    assert checked.runs > 1


def test_the_command_line_shows_and_checks(tmp_path: Path) -> None:
    shown = subprocess.run(
        [script(), "exercise", "show", "1"], capture_output=True, text=True, timeout=60,
        check=True,
    )  # fmt: skip
    path = _student(tmp_path, shown.stdout)  # the broken buyer, as a student saves it
    done = subprocess.run(
        [script(), "exercise", "check", "1", str(path)], capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == ExitCode.VIOLATED, done.stdout + done.stderr
    assert "hint: another buyer read the same count" in done.stdout
    listed = subprocess.run(
        [script(), "exercise", "list"], capture_output=True, text=True, timeout=60, check=True
    )
    assert len(listed.stdout.splitlines()) == len(EXERCISES)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        # Named as the usage names these arguments, not as options there are not.
        (["exercise", "show", "99"], "error: NUMBER=99: choose one of"),
        (["exercise", "check", "1", "nothere.py"], "error: FILE='nothere.py'"),
        (["exercise", "check", "1", "/etc/hostname"], ".py file"),
    ],
)
def test_the_command_line_refuses(args: list[str], words: str) -> None:
    done = subprocess.run(
        [script(), *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == ExitCode.BAD_INPUT, done.stdout + done.stderr
    assert words in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_fix_that_raises_is_told_so(tmp_path: Path) -> None:
    broken = _student(tmp_path, "def buy(path, buyer):\n    return undefined_name\n")
    checked = check_file(1, broken)
    assert checked.report is not None
    assert not checked.report.ok
    assert "raised an exception" in checked.hint


def test_a_file_named_like_a_module_is_refused(tmp_path: Path) -> None:
    shadow = tmp_path / "secrets.py"
    shadow.write_text(exercise(1).right, encoding="utf-8")
    with pytest.raises(ValueError, match="rename the file"):
        check_file(1, shadow)


def test_a_file_that_calls_sys_exit_as_it_is_imported_is_the_students_to_fix(
    tmp_path: Path,
) -> None:
    """Its exit would end ticketsim with the student's code, and say nothing."""
    student = _student(tmp_path, "import sys\nsys.exit(9)\n")
    with pytest.raises(ConfigError, match=r"cannot import it \(called sys.exit\(9\): return"):
        check_file(1, student)


def test_a_file_whose_import_never_returns_is_the_students_to_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check waited for it for ever, as no other command that imports the user's
    code does: they give it IMPORT_S (60 s, made 1 here)."""
    monkeypatch.setattr(yours, "IMPORT_S", 1.0)
    student = _student(tmp_path, "import time\ntime.sleep(30)\n")
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"cannot import it \(did not return within 1 s"):
        check_file(1, student)
    assert time.monotonic() - started < 10


def test_a_check_clears_the_shop_files_of_checks_that_were_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGKILLed check left its shop file in the temp folder for good: each check
    removed only its own."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    child = subprocess.Popen(["true"])
    child.wait()  # its pid is a gone process's now
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        ends = ("", ".new", ".lock")
        dead = [tmp_path / f"ticketsim-exercise-{child.pid}.json{end}" for end in ends]
        kept = [
            tmp_path / f"ticketsim-exercise-{sleeper.pid}.json",  # a running check's
            tmp_path / "ticketsim-exercise-notes.json",  # no name the shop gives
        ]
        for path in (*dead, *kept):
            path.write_text("{}")
        checked = check_file(1, _student(tmp_path, exercise(1).right))
        assert checked.broken is None
        assert sorted(p for p in tmp_path.iterdir() if p.name.startswith("ticketsim-")) == sorted(
            kept
        )
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize(
    "damage",
    ['open(path, "w").write("garbage")', "os.unlink(path)"],
    ids=["garbled", "deleted"],
)
def test_a_buyer_that_breaks_the_shops_file_is_a_broken_fix(tmp_path: Path, damage: str) -> None:
    """It was blamed on --sold, an option the student never gave (exit 2)."""
    student = _student(
        tmp_path,
        f"import os\n\ndef buy(path, buyer):\n    {damage}\n    return None\n",
    )
    checked = check_file(1, student)
    assert checked.report is not None
    assert checked.report.exit_code == ExitCode.VIOLATED
    said = [v.explanation for v in checked.report.violations]
    assert any("the shop's file was left unreadable" in words for words in said), said
