"""Adversarial: the terminal. A db or a history cannot drive the terminal, and Ctrl-C or
Ctrl-D at the demo's prompt ends the lesson cleanly.

Text from files (an event name, a buyer's name, a history's notes) and from the
command line (a path) is shown with its control characters escaped; ``--json``
carries it unchanged, JSON-escaped. The demo is driven through a real pseudo-terminal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest
from typer.testing import CliRunner

from ticketsim.cli import app
from ticketsim.core import db as dbfile
from ticketsim.core.printable import line, printable

runner = CliRunner()

#: What a hostile file would write to take over a terminal: clear the screen, set the
#: window title (OSC), move the cursor back over text (CR, backspace), reverse the text
#: that follows (RLO), and a C1 control sequence introducer.
HOSTILE = "\x1b[2J\x1b]0;owned\x07\rfake OK\x08\x08\u202ereversed\x9b31m"
CONTROLS = ("\x1b", "\x07", "\r", "\x08", "\u202e", "\x9b")


def _assert_inert(text: str) -> None:
    for char in CONTROLS:
        assert char not in text, (repr(char), text)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[2J", "\\x1b[2J"),
        ("bell\x07", "bell\\x07"),
        ("a\rb", "a\\x0db"),
        ("\x7f\x9b", "\\x7f\\x9b"),
        ("\u202eabc\u2066", "\\u202eabc\\u2066"),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
        ("plain, é and ✓", "plain, é and ✓"),
        ("lone\ud800 and \udcff", "lone\\ud800 and \\udcff"),
    ],
)
def test_printable_escapes_what_could_drive_a_terminal(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_line_keeps_a_message_on_one_line() -> None:
    assert line("two\nlines\x1b") == "two\\nlines\\x1b"


def _hostile_db(path: Path) -> None:
    sale = dbfile.Sale(buyer=f"buyer{HOSTILE}", seat=1, pid=1, time=0.0)
    db = dbfile.TicketDB(tickets=3, remaining=2, ledger=(sale,), event=f"Gala{HOSTILE}")
    dbfile.write_atomic(path, db)


def test_show_escapes_a_hostile_event_and_buyer_name(db_path: Path) -> None:
    _hostile_db(db_path)
    result = runner.invoke(app, ["show", "--db", str(db_path)], prog_name="ticketsim")
    assert result.exit_code == 0, result.output
    _assert_inert(result.output)
    assert "\\x1b[2J" in result.output
    assert "\\u202ereversed" in result.output


def test_show_prints_an_emoji_code_in_a_name_as_written(db_path: Path) -> None:
    """rich turns ``:fire:`` into an emoji by default: the db's own text is shown as is."""
    sale = dbfile.Sale(buyer="buyer:smile:", seat=1, pid=1, time=0.0)
    db = dbfile.TicketDB(tickets=3, remaining=2, ledger=(sale,), event="Gala :fire:")
    dbfile.write_atomic(db_path, db)
    result = runner.invoke(app, ["show", "--db", str(db_path)], prog_name="ticketsim")
    assert result.exit_code == 0, result.output
    assert "Gala :fire:" in result.output
    assert "buyer:smile:" in result.output
    assert "\N{FIRE}" not in result.output
    assert "\N{SMILING FACE WITH OPEN MOUTH AND SMILING EYES}" not in result.output


def test_show_json_keeps_the_data_as_it_is(db_path: Path) -> None:
    _hostile_db(db_path)
    result = runner.invoke(app, ["show", "--db", str(db_path), "--json"], prog_name="ticketsim")
    assert result.exit_code == 0, result.output
    _assert_inert(result.output)  # JSON escapes control characters itself
    assert json.loads(result.output)["event"] == f"Gala{HOSTILE}"


def test_check_escapes_a_hostile_note_in_a_history(tmp_path: Path) -> None:
    db, history = tmp_path / "tickets.json", tmp_path / "run.jsonl"
    ran = runner.invoke(
        app,
        [
            "run",
            "--buyers",
            "2",
            "--lock",
            "--delay",
            "0",
            "--db",
            str(db),
            "--history",
            str(history),
        ],
        prog_name="ticketsim",
    )
    assert ran.exit_code == 0, ran.output
    lines = history.read_text(encoding="utf-8").splitlines()
    head = json.loads(lines[0])
    head["stalled"] = f"no progress{HOSTILE}"
    history.write_text("\n".join([json.dumps(head), *lines[1:]]) + "\n", encoding="utf-8")
    result = runner.invoke(
        app, ["check", "--history", str(history), "--db", str(db)], prog_name="ticketsim"
    )
    assert "no progress" in result.output
    _assert_inert(result.output)


def test_check_escapes_a_hostile_system_name_in_a_history_another_program_wrote(
    tmp_path: Path,
) -> None:
    history = tmp_path / "checkout.jsonl"
    foreign = Path(__file__).parent / "analysis" / "foreign" / "checkout.py"
    subprocess.run([sys.executable, str(foreign), str(history)], check=True, timeout=60)
    lines = history.read_text(encoding="utf-8").splitlines()
    head = json.loads(lines[0])
    head["system"] = f"shop{HOSTILE}"
    history.write_text("\n".join([json.dumps(head), *lines[1:]]) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["check", "--history", str(history)], prog_name="ticketsim")
    assert result.exit_code == 0, result.output
    assert "shop\\x1b[2J" in result.output
    _assert_inert(result.output)


def test_text_no_encoding_can_write_is_refused_or_shown_escaped_never_an_internal_error(
    tmp_path: Path,
) -> None:
    """A lone surrogate (a JSON "\\ud800" in a db, an undecodable byte of a name typed)
    is half a character, which no UTF-8 output, file or database can hold: a db or a
    name with one is refused in one line; a mark's name in the user's buyer, which
    ticketsim only shows, is shown escaped."""
    db = tmp_path / "tickets.json"
    sale = dbfile.Sale(buyer="buyer\ud800", seat=1, pid=1, time=0.0)
    dbfile.write_atomic(db, dbfile.TicketDB(tickets=2, remaining=1, ledger=(sale,)))
    (tmp_path / "oddshop.py").write_text(
        "from ticketsim import race\n"
        "def setup():\n    return None\n"
        "def buy(handle, buyer):\n    race.step('look\\ud800')\n    return None\n",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}  # strict, as a UTF-8 locale is
    store = f"sqlite:///{tmp_path / 'store.sqlite'}"
    refused = [
        (["show", "--db", str(db)], "ledger[0].buyer (buyer\\ud800) holds half a character"),
        (["run", "--keep", "--lock", "--db", str(db)], "holds half a character"),
        (["reset", "--store", store, "--event", "Gala\udcff"], "--event='Gala\\udcff'"),
    ]
    for args, words in refused:
        done = subprocess.run(
            [sys.executable, "-m", "ticketsim", *args],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert words in done.stderr, done.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "ticketsim", "explore", "--buyer", "oddshop:buy",
         "--setup", "oddshop:setup", "--buyers", "2"],
        capture_output=True, env=env, cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    # The buyer buys nothing: explore finds the ticket it leaves unsold (exit 1).
    assert shown.returncode == 1, shown.stderr
    assert b"look\\ud800" in shown.stdout, shown.stdout


def test_an_error_message_escapes_the_path_it_names(tmp_path: Path) -> None:
    missing = tmp_path / f"nothing{HOSTILE.replace('/', '')}.json"
    result = runner.invoke(app, ["show", "--db", str(missing)], prog_name="ticketsim")
    assert result.exit_code == 2
    _assert_inert(result.output)
    assert "\\x1b[2J" in result.output


def _demo(tmp_path: Path) -> pexpect.spawn[str]:
    env = {**os.environ, "COLUMNS": "80", "LINES": "24", "TERM": "xterm"}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "ticketsim", "demo", "--db", str(tmp_path / "tickets.json")],
        env=env,
        encoding="utf-8",
        timeout=60,
        dimensions=(24, 80),
    )
    child.expect("Enter for the next step")
    _reading_its_terminal(child)
    return child


def _reading_its_terminal(child: pexpect.spawn[str]) -> None:
    """Wait until the program blocks reading its terminal, as a person at the prompt
    would. The prompt is written just before that read starts, and a Ctrl-C between the
    two is lost: CPython's input() looks at signals only when its read is interrupted,
    and this read starts after the interrupt came (it would wait for the next key)."""
    deadline = time.monotonic() + 60
    while Path(f"/proc/{child.pid}/wchan").read_text() != "wait_woken":
        assert child.isalive(), child.before
        assert time.monotonic() < deadline, "the demo never waited for a key"
        time.sleep(0.005)


def _ended(child: pexpect.spawn[str]) -> tuple[int | None, str]:
    rest = child.read()  # to the end of the output: the child has exited
    child.close()
    return child.exitstatus, rest


@pytest.mark.parametrize(
    ("key", "code", "words"),
    [("ctrl-c", 130, "interrupted"), ("ctrl-d", 0, "Lesson ended")],
)
def test_a_key_at_the_demo_prompt_ends_it_cleanly(
    tmp_path: Path, key: str, code: int, words: str
) -> None:
    """Ctrl-C ends as any interrupt does (exit 130, one line); Ctrl-D ends the lesson."""
    child = _demo(tmp_path)
    if key == "ctrl-c":
        child.sendintr()
    else:
        child.sendeof()
    status, rest = _ended(child)
    assert status == code, rest
    assert words in rest
    assert "internal error" not in rest
    assert "Traceback" not in rest


def test_enter_at_the_demo_prompt_goes_on_to_the_next_step(tmp_path: Path) -> None:
    child = _demo(tmp_path)
    child.sendline("")
    child.expect("2\\. ")  # the next lesson's title
    child.expect("Enter for the next step")
    child.sendeof()
    status, rest = _ended(child)
    assert status == 0, rest
