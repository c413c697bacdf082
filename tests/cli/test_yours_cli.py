"""``--buyer``: the user's own buyer by import path, from the command line, on the
example shop (examples/shop), in real processes."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest
from sales import script

from ticketsim.core.exits import ExitCode

SHOP = Path(__file__).parents[2] / "examples" / "shop"
WITH = ["--setup", "shop:open_shop", "--sold", "shop:sales", "--buyers", "2", "--tickets", "1"]


def _ticketsim(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The shop's file goes in the test's own folder (the shop puts it in TMPDIR).
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    return subprocess.run(
        [script(), *args], cwd=SHOP, env=env, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def test_explore_finds_the_shops_bug_and_says_how_to_replay_it(tmp_path: Path) -> None:
    found = _ticketsim(tmp_path, "explore", "--buyer", "shop:buy", *WITH)
    assert found.returncode == ExitCode.VIOLATED, found.stdout + found.stderr
    assert "OVERSOLD" in found.stdout
    assert "schedule: 1:check stock 2:check stock 2:done 1:done" in found.stdout
    replay = found.stdout.split("play it again: ", 1)[1].strip()
    assert replay.startswith("ticketsim replay --buyer shop:buy")
    again = _ticketsim(tmp_path, *shlex.split(replay)[1:], "--repeat", "3")
    assert again.returncode == ExitCode.VIOLATED, again.stdout + again.stderr
    assert "reproduced 3/3" in again.stdout


def test_explore_passes_the_fixed_shop_over_every_schedule(tmp_path: Path) -> None:
    done = _ticketsim(tmp_path, "explore", "--buyer", "shop:buy_fixed", *WITH, "--json")
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    said = json.loads(done.stdout)
    assert said["complete"]
    assert said["runs"] > 1


def test_a_search_cut_short_says_so(tmp_path: Path) -> None:
    done = _ticketsim(
        tmp_path, "explore", "--buyer", "shop:buy_fixed", *WITH, "--max-schedules", "2"
    )
    assert done.returncode == ExitCode.STALLED, done.stdout + done.stderr
    assert "were not checked" in done.stdout


def test_a_search_within_a_preemption_bound_is_no_proof(tmp_path: Path) -> None:
    """The buggy shop's serial schedules keep every invariant: with the bound at 0 the
    search said every schedule did, exit 0, of a buyer that oversells."""
    done = _ticketsim(
        tmp_path, "explore", "--buyer", "shop:buy", *WITH, "--preemption-bound", "0", "--json"
    )
    assert done.returncode == ExitCode.STALLED, done.stdout + done.stderr
    said = json.loads(done.stdout)
    assert (said["complete"], said["bounded"]) == (False, True)
    assert said["verdict"].startswith("INCOMPLETE: every schedule of shop:buy with at most 0")


def test_run_lets_the_buyers_race_freely(tmp_path: Path) -> None:
    done = _ticketsim(tmp_path, "run", "--buyer", "shop:buy_fixed", *WITH, "--json")
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["system"] == "shop:buy_fixed"
    assert report["sold"] == 1
    # The buyers ran at once: the order their marks arrived in is no schedule to replay.
    assert report["replay"] is None
    assert report["schedule_played"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["run", "--buyer", "shop", "--setup", "shop:open_shop"], "package.module:function"),
        (["run", "--buyer", "shop:nope", "--setup", "shop:open_shop"], "no function 'nope'"),
        (["run", "--buyer", "gone:buy", "--setup", "shop:open_shop"], "cannot import 'gone'"),
        # Python's own json, which ticketsim has imported, would be taken for theirs.
        (["run", "--buyer", "json:buy", "--setup", "shop:open_shop"], "a module of Python's"),
        (["run", "--buyer", "shop:buy"], "--setup"),
        (["run", "--buyer", "shop:open_shop", *WITH], "calls it as buy(handle, buyer)"),
        (["explore", "--buyer", "shop:buy", *WITH, "--sold", "shop:buy"], "sold(handle)"),
        (["run", "--buyer", "shop:buy", "--setup", "shop:open_shop", "--lock"], "--lock"),
        (["replay", "--buyer", "shop:buy", *WITH, "--schedule", "1 3"], "'3' names no buyer"),
        (["explore", "--buyer", "shop:buy", *WITH, "--strategy", "lock"], "--strategy"),
        # Only what was given is named: the --all never given is not.
        (["explore", "--buyer", "shop:buy", *WITH, "--replays", "1"], "error: --replays=1: "),
    ],
)
def test_a_buyer_given_wrong_is_one_line(tmp_path: Path, args: list[str], words: str) -> None:
    done = _ticketsim(tmp_path, *args)
    assert done.returncode == ExitCode.BAD_INPUT, done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert words in done.stderr


def test_hunt_draws_and_shrinks_the_shops_bug(tmp_path: Path) -> None:
    found = _ticketsim(tmp_path, "hunt", "--buyer", "shop:buy", *WITH)
    assert found.returncode == ExitCode.VIOLATED, found.stdout + found.stderr
    assert "drawn and shrunk by hypothesis" in found.stdout
    # Shrunk to the simplest breaking schedule: the one explore finds first.
    assert "schedule: 1:check stock 2:check stock 2:done 1:done" in found.stdout


def test_a_hunt_that_finds_nothing_claims_nothing(tmp_path: Path) -> None:
    """It exits as a hunt of a built-in strategy does: 0, every drawn schedule played."""
    done = _ticketsim(tmp_path, "hunt", "--buyer", "shop:buy_fixed", *WITH, "--max-examples", "5")
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    assert "5 drawn schedules of shop:buy_fixed kept every invariant" in done.stdout
    assert "nothing is claimed" in done.stdout
    built_in = _ticketsim(
        tmp_path, "hunt", "--lock", "--buyers", "2", "--tickets", "1", "--max-examples", "2",
        "--pct-runs", "1", "--json", "--db", str(tmp_path / "tickets.json"),
    )  # fmt: skip
    assert built_in.returncode == done.returncode, built_in.stdout + built_in.stderr
    assert json.loads(built_in.stdout)["counterexample"] is None


def test_a_run_of_your_buyer_is_saved_and_checked_again(tmp_path: Path) -> None:
    saved = tmp_path / "mine.jsonl"
    run = _ticketsim(tmp_path, "run", "--buyer", "shop:buy", *WITH, "--history", str(saved))
    checked = _ticketsim(tmp_path, "check", "--history", str(saved), "--json")
    assert checked.returncode == run.returncode, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    assert report["system"] == "shop:buy"


def test_a_replay_whose_turns_this_code_cannot_take_is_refused(tmp_path: Path) -> None:
    """It played the turns that fitted, skipped the rest, and said OK and "reproduced
    3/3" of a schedule it never played."""
    done = _ticketsim(
        tmp_path, "replay", "--buyer", "shop:buy_fixed", *WITH,
        "--schedule", "2 1 1 1 1 1 1 1 2 2 2 2", "--repeat", "3",
    )  # fmt: skip
    assert done.returncode == ExitCode.BAD_INPUT, done.stdout + done.stderr
    said = done.stderr.strip().splitlines()
    assert len(said) == 1, done.stderr
    assert "--schedule='2 1 1 1 1 1 1 1 2 2 2 2': turn " in said[0]
    assert "a move it could not make there" in said[0]
    assert done.stdout == ""


def test_what_the_shop_prints_does_not_break_the_json(tmp_path: Path) -> None:
    """Printed output of the user's code went to stdout, before the JSON."""
    loud = tmp_path / "loud"
    loud.mkdir()
    (loud / "loudshop.py").write_text(
        "import sys\nsys.path.insert(0, " + repr(str(SHOP)) + ")\n"
        "import shop\nprint('importing loudshop')\n"
        "def buy(handle, buyer):\n"
        "    print('buying', buyer)\n"
        "    return shop.buy_fixed(handle, buyer)\n",
        encoding="utf-8",
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [script(), "run", "--buyer", "loudshop:buy", *WITH, "--json"],
        cwd=loud, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    json.loads(done.stdout)
    assert "importing loudshop" in done.stderr
    assert done.stderr.count("buying") == 2  # the two buyers may print at once


@pytest.mark.parametrize("schedule", ["", "   "])
def test_replay_of_an_empty_schedule_is_refused_as_the_built_in_one_is(
    tmp_path: Path, schedule: str
) -> None:
    """It played the buyers freely and said they kept every invariant: a run, not a
    replay of anything."""
    done = _ticketsim(tmp_path, "replay", "--buyer", "shop:buy", *WITH, "--schedule", schedule)
    assert done.returncode == ExitCode.BAD_INPUT, done.stdout + done.stderr
    assert done.stderr == (
        f"ticketsim: error: --schedule={schedule!r}: give who moves at each turn, like '1 2 2 1'\n"
    )
