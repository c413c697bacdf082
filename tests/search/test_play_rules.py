"""The rules of ``ticketsim play``, without a terminal: every level's winning moves win,
no order breaks a protected level, undo, who can move, and the two-step schedules."""

from __future__ import annotations

import pytest

from ticketsim.search import play as game
from ticketsim.views.play import HEIGHT, WIDTH, help_lines, levels_lines, screen

WINNABLE = [level for level in game.LEVELS if not level.protected]
PROTECTED = [level for level in game.LEVELS if level.protected]


def round_robin(level: game.Level) -> tuple[int, ...]:
    """A whole game that switches buyer at every move it can: the most interleaved order."""
    state, last = game.start(level), 0
    while not game.over(level, state):
        can = game.enabled(level, state)
        after = [a for a in can if a > last] or list(can)
        last = after[0]
        state = game.advance(level, state, last)
    return state.moves


def test_there_are_at_least_six_levels_and_protected_ones() -> None:
    assert len(game.LEVELS) >= 6
    assert len(PROTECTED) >= 2
    assert [level.number for level in game.LEVELS] == list(range(1, len(game.LEVELS) + 1))


@pytest.mark.parametrize("level", WINNABLE, ids=lambda level: level.title)
def test_the_winning_moves_break_the_sale_at_the_last_move(level: game.Level) -> None:
    for index in range(len(level.winning)):
        assert not game.broken(level, game.play(level, level.winning[:index])), index
    assert game.broken(level, game.play(level, level.winning))


@pytest.mark.parametrize("level", WINNABLE, ids=lambda level: level.title)
def test_the_search_finds_a_break_in_every_unprotected_level(level: game.Level) -> None:
    """The proof search can fail: it finds the break where there is one."""
    found = game.reachable_broken(level)
    assert found is not None
    assert game.broken(level, game.play(level, found))


@pytest.mark.parametrize("level", PROTECTED, ids=lambda level: level.title)
def test_no_reachable_state_of_a_protected_level_breaks_it(level: game.Level) -> None:
    assert game.reachable_broken(level) is None
    assert level.why_safe
    ended = game.play(level, round_robin(level))
    assert game.over(level, ended)
    assert not game.broken(level, ended)
    assert len(ended.sold) == level.tickets  # held, and not by selling nothing


def test_undo_is_the_state_before_the_last_move() -> None:
    level = game.level(1)
    state = game.play(level, (1, 1, 2))
    assert game.undo(level, state) == game.play(level, (1, 1))
    assert game.undo(level, game.start(level)) == game.start(level)


def test_a_buyer_waiting_for_the_lock_cannot_move() -> None:
    level = game.level(5)
    state = game.play(level, (1, 1, 2))  # buyer 1 checked and holds the lock; 2 checked
    assert game.enabled(level, state) == (1,)
    assert "buyer 1 holds the lock" in (game.blocked(level, state, 2) or "")
    with pytest.raises(ValueError, match="buyer 2 cannot move"):
        game.advance(level, state, 2)
    state = game.play(level, (1, 1, 2, 1, 1, 1, 1))  # buyer 1 released it
    assert game.enabled(level, state) == (2,)


def test_a_semaphore_of_two_lets_two_buyers_in() -> None:
    level = game.level(6)
    state = game.play(level, (1, 1, 2, 2))
    assert state.holders == (1, 2)
    assert game.enabled(level, state) == (1, 2)


def test_a_buyer_waits_for_the_offices_answer() -> None:
    level = game.level(7)
    state = game.play(level, (1, 1))  # checked and sent its request
    assert game.blocked(level, state, 1) == "waits for the office's answer"
    assert game.enabled(level, state) == (2, 3)
    assert game.blocked(level, game.start(level), 3) == "waits for a request"


def test_serializable_refuses_the_second_commit_and_its_retry_sees_the_sale() -> None:
    level = game.level(10)
    state = game.play(level, (1, 2, 1, 2, 1, 2, 1, 2))
    assert "could not serialize" in state.note
    assert state.actor(2).pc == 0
    assert state.actor(2).retries == 1
    state = game.advance(level, game.advance(level, state, 2), 2)  # count, decide
    assert state.actor(2).told == 0  # its retry counted buyer 1's sale: sold out
    assert game.finished(level, state, 2)


def test_a_refused_buyer_skips_its_write() -> None:
    level = game.level(5)
    state = game.play(level, (1, 2, 1, 1, 1, 1, 1, 2, 2, 2))
    assert state.actor(2).refused
    assert state.actor(2).skipped == (4,)
    assert game.next_step(level, state, 2) == level.program[5]  # the unlock


@pytest.mark.parametrize(
    ("number", "schedule"),
    [(1, "1r 2r 1w 2w"), (2, "1r 2r 1w 2w"), (9, "1r 2r 1w 2w")],
)
def test_a_won_game_maps_to_a_faithful_two_step_schedule(number: int, schedule: str) -> None:
    level = game.level(number)
    found, why = game.faithful(level, level.winning)
    assert found is not None, why
    assert str(found) == schedule
    ran = game.coarse(level, found)
    assert ran is not None
    assert game.broken(level, ran)


def test_a_sequential_win_maps_to_its_own_order() -> None:
    """Buyer 1 reads, buyer 2 checks and reads, both write: the read order is kept."""
    level = game.level(1)
    assert str(game.two_step(level, (1, 1, 2, 2, 1, 1, 2, 2))) == "1r 2r 1w 2w"
    assert str(game.two_step(level, (2, 2, 1, 1, 2, 2, 1, 1))) == "2r 1r 2w 1w"


@pytest.mark.parametrize("number", [3, 4, 6, 8])
def test_no_replay_is_offered_where_none_is_faithful(number: int) -> None:
    level = game.level(number)
    found, why = game.faithful(level, level.winning)
    assert found is None
    assert why


def test_a_torn_read_is_between_the_steps_a_replay_grants_as_one() -> None:
    level = game.level(8)
    found, why = game.faithful(level, level.winning)
    assert found is None
    assert "torn read" in why
    assert "no replay can force it" in why
    # The same level won by a lost update instead has a faithful replay with 'none'.
    lost = (1, 1, 2, 2, 1, 1, 1, 2, 2, 2)
    assert "lost update" in {b.kind for b in game.broken(level, game.play(level, lost))}
    found, why = game.faithful(level, lost)
    assert found is not None, why


@pytest.mark.parametrize("level", game.LEVELS, ids=lambda level: level.title)
def test_every_screen_fits_80_by_24(level: game.Level) -> None:
    moves = level.winning or round_robin(level)
    for index in range(len(moves) + 1):
        state = game.play(level, moves[:index])
        lines = screen(level, state, "a message " * 30)
        assert len(lines) <= HEIGHT
        assert all(len(line) < WIDTH for line in lines), lines


def test_the_help_and_the_list_fit_80_by_24() -> None:
    for lines in (help_lines(game.level(1)), levels_lines()):
        assert len(lines) <= HEIGHT
        assert all(len(line) < WIDTH for line in lines), lines
