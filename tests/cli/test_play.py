"""``ticketsim play`` through a real pseudo-terminal at 80x24: keys in, screen checked;
its scripted mode and refusals; and each won level's replay command, run for real."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pexpect
import pytest
from typer.testing import CliRunner

from ticketsim.cli import app
from ticketsim.search import play as game

if TYPE_CHECKING:
    from collections.abc import Iterator

TICKETSIM = str(Path(sys.executable).with_name("ticketsim"))
WINNABLE = [level for level in game.LEVELS if not level.protected]
PROTECTED = [level for level in game.LEVELS if level.protected]


def _spawn(*args: str) -> pexpect.spawn[str]:
    env = {**os.environ, "COLUMNS": "80", "LINES": "24", "TERM": "xterm"}
    return pexpect.spawn(
        TICKETSIM, ["play", *args], env=env, encoding="utf-8", timeout=20, dimensions=(24, 80)
    )


def _game(*args: str) -> Iterator[pexpect.spawn[str]]:
    child = _spawn(*args)
    try:
        child.expect("Your move")
        yield child
    finally:
        child.close(force=True)


def _ended(child: pexpect.spawn[str]) -> tuple[int | None, str]:
    rest = child.read()  # to the end of the output: the child has exited
    child.close()
    return child.exitstatus, rest


def _keys(child: pexpect.spawn[str], moves: tuple[int, ...]) -> None:
    for move in moves:
        child.send(str(move))


def _round_robin(level: game.Level) -> tuple[int, ...]:
    state, last = game.start(level), 0
    while not game.over(level, state):
        can = game.enabled(level, state)
        last = ([a for a in can if a > last] or list(can))[0]
        state = game.advance(level, state, last)
    return state.moves


@pytest.mark.parametrize("level", WINNABLE, ids=lambda level: f"{level.number}")
def test_a_winning_schedule_played_through_the_terminal_wins(level: game.Level) -> None:
    for child in _game("--level", str(level.number)):
        _keys(child, level.winning)
        child.expect("You broke the sale in")
        status, rest = _ended(child)
        assert status == 1, rest
        kinds = {b.kind for b in game.broken(level, game.play(level, level.winning))}
        assert all(kind in rest for kind in kinds), rest
        if level.strategy is not None and "torn read" not in kinds:
            assert f"ticketsim replay --strategy {level.strategy} --buyers" in rest
        else:
            assert "No replay with real processes" in rest
            assert "ticketsim replay" not in rest
        assert "Traceback" not in rest


@pytest.mark.parametrize("level", PROTECTED, ids=lambda level: f"{level.number}")
def test_a_protected_level_cannot_be_won_and_says_why(level: game.Level) -> None:
    for child in _game("--level", str(level.number)):
        _keys(child, _round_robin(level))
        child.expect("The sale held")
        child.expect("No order of these steps breaks it")
        child.send("q")
        status, rest = _ended(child)
        assert status == 0, rest
        assert "the sale held" in rest
        assert "You broke" not in rest


def test_a_blocked_buyer_undo_restart_and_help() -> None:
    for child in _game("--level", "5"):
        child.send("1")
        child.send("1")  # buyer 1 checked and took the lock
        child.send("2")
        child.send("2")  # buyer 2 checked; its lock must wait
        child.expect(r"buyer 2 cannot move: waits: buyer 1 holds the lock")
        child.send("h")
        child.expect("You are the scheduler")
        child.send(" ")
        child.send("u")  # undo buyer 2's check
        child.expect(r"\[2\] buyer 2: has not started")
        child.send("r")
        child.expect(r"\[1\] buyer 1: has not started")
        child.send("q")
        status, rest = _ended(child)
        assert status == 0, rest
        assert "0 move(s) played" in rest


def test_the_end_of_stdin_ends_the_game_cleanly() -> None:
    for child in _game("--level", "1"):
        child.send("1")
        child.sendeof()
        status, rest = _ended(child)
        assert status == 0, rest
        assert "1 move(s) played (1); the game is not over." in rest


def test_play_refuses_a_stdin_that_is_not_a_terminal() -> None:
    result = CliRunner().invoke(app, ["play", "--level", "1"])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert "stdin is not a terminal" in result.stderr
    assert "--moves" in result.stderr


def test_play_and_the_demo_take_a_closed_stdin_for_no_terminal(tmp_path: Path) -> None:
    """With fd 0 closed Python's ``sys.stdin`` is ``None``: asking it whether it was a
    terminal was an internal error (exit 70) in 'play' and in 'demo'."""
    closed = subprocess.run(
        [TICKETSIM, "play", "--level", "1"], capture_output=True, text=True, timeout=60,
        check=False, preexec_fn=lambda: os.close(0), cwd=tmp_path,
    )  # fmt: skip
    assert closed.returncode == 2, closed.stderr
    assert closed.stderr.strip().count("\n") == 0
    assert "stdin is not a terminal" in closed.stderr
    from ticketsim.cli import output

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(sys, "stdin", None)
        assert output.typed_into() is False


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--level", "0"], "--level=0: there are levels 1 to"),
        (["--moves", "1 x"], "move 2 ('x') is not a buyer's number"),
        (["--moves", "1 \u00b2"], "move 2 ('\u00b2') is not a buyer's number"),
        (["--level", "5", "--moves", "1 1 2 2"], "buyer 2 cannot move (waits: buyer 1 holds"),
        (["--moves", "1 1 2 2 1 1 2 2 1"], "comes after the game ended at move 8"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], words: str) -> None:
    result = CliRunner().invoke(app, ["play", *args])
    assert result.exit_code == 2, result.output
    assert words in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_the_scripted_mode_prints_the_screen_and_the_replay(tmp_path: Path) -> None:
    saved = tmp_path / "game.json"
    result = CliRunner().invoke(
        app, ["play", "--level", "2", "--moves", "1 1 2 2 1 2", "--save", str(saved)]
    )
    assert result.exit_code == 1, result.output
    assert "[1] buyer 1:" in result.stdout
    assert "As ticketsim's two-step schedule: 1r 2r 1w 2w" in result.stdout
    assert f"game: {saved}" in result.stdout
    data = json.loads(saved.read_text())
    assert data["moves"] == "1 1 2 2 1 2"
    assert data["schedule"] == "1r 2r 1w 2w"
    assert data["replay"].startswith("ticketsim replay --strategy value-unlocked")
    # A game ticketsim saved may be saved over; any other file is refused, untouched.
    again = CliRunner().invoke(
        app, ["play", "--level", "2", "--moves", "1 1 2 2 1 2", "--save", str(saved)]
    )
    assert again.exit_code == 1, again.output
    other = tmp_path / "notes.txt"
    other.write_text("mine\n")
    refused = CliRunner().invoke(
        app, ["play", "--level", "2", "--moves", "1", "--save", str(other)]
    )
    assert refused.exit_code == 2
    assert "is not a game ticketsim saved" in refused.stderr
    assert other.read_text() == "mine\n"
    # JSON that only mentions the key, or a path that resolves to a saved game only as
    # text, is not a game ticketsim saved either.
    for text in ('["ticketsim_play"]', '"ticketsim_play"'):
        other.write_text(text)
        refused = CliRunner().invoke(
            app, ["play", "--level", "2", "--moves", "1", "--save", str(other)]
        )
        assert refused.exit_code == 2, refused.output
        assert other.read_text() == text
    through = f"{tmp_path}/missing/../{saved.name}"
    before = saved.read_bytes()
    refused = CliRunner().invoke(app, ["play", "--level", "2", "--moves", "1", "--save", through])
    assert refused.exit_code == 2, refused.output
    assert "missing/.. does not exist" in refused.stderr
    assert saved.read_bytes() == before


def test_list_names_every_level() -> None:
    result = CliRunner().invoke(app, ["play", "--list"])
    assert result.exit_code == 0
    for level in game.LEVELS:
        assert level.title in result.stdout


@pytest.mark.parametrize(
    "level",
    [level for level in WINNABLE if game.faithful(level, level.winning)[0] is not None],
    ids=lambda level: f"{level.number}",
)
def test_each_printed_replay_command_really_violates(level: game.Level, tmp_path: Path) -> None:
    """The command a won game prints, run as printed (real buyer processes), exits 1."""
    played = subprocess.run(
        [TICKETSIM, "play", "--level", str(level.number), "--moves",
         " ".join(map(str, level.winning))],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert played.returncode == 1, played.stderr
    command = played.stdout.strip().splitlines()[-1]
    words = shlex.split(command)
    assert words[:2] == ["ticketsim", "replay"]
    ran = subprocess.run(
        [TICKETSIM, *words[1:], "--db", str(tmp_path / "tickets.json"), "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert ran.returncode == 1, (ran.stdout, ran.stderr)
    report = json.loads(ran.stdout)
    assert report["oversold"] >= 1


def test_timeline_runs_the_replay_and_draws_it(tmp_path: Path) -> None:
    page = tmp_path / "race.html"
    result = CliRunner().invoke(
        app, ["play", "--level", "1", "--moves", "1 1 2 2 1 1 2 2", "--timeline", str(page)]
    )
    assert result.exit_code == 1, result.output
    assert "The real sale: OVERSOLD" in result.stdout
    assert f"timeline: {page}" in result.stdout
    assert "<svg" in page.read_text()


def test_ctrl_c_ends_the_game_as_any_interrupt_does() -> None:
    for child in _game("--level", "1"):
        child.send("1")
        child.sendintr()
        status, rest = _ended(child)
        assert status == 130, rest
        assert "interrupted" in rest
        assert "Traceback" not in rest
