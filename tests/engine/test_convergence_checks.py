"""The convergence simulation's own checks, on hand-made histories: a check that excuses too
much hides product bugs, one that excuses too little reports false alarms (soak seeds 8
trello and 2019 gitea: a tracker value went v→x→v between two looks of the service, and check
(b) counted the service's ignorance of it as a lost edit)."""

from __future__ import annotations

from typing import Any

from tests.engine.convergence import Change, Seen, unheld_values, unobservable_round_trips


def _equal(field: str, a: Any, b: Any) -> bool:
    return bool(a == b)


def seen(state: str, title: str = "t") -> Seen:
    return Seen({"title": title, "state": state})


def human(before: str, after: str, edit: int, field: str = "state") -> Change:
    return Change(field, before, after, edit=edit)


def ours(before: str, after: str, field: str = "state") -> Change:
    return Change(field, before, after)


def created(state: str = "open", title: str = "t") -> list[Change]:
    return [Change("title", None, title), Change("state", None, state)]


def round_trips(events: list[Any]) -> set[int]:
    return unobservable_round_trips(events, "state", _equal)


# --- which human edits the service could not have observed ---------------------------------------


def test_a_round_trip_between_two_looks_that_both_saw_the_start_value_is_unobservable() -> None:
    events = [
        *created(),
        seen("open"),
        human("open", "closed", edit=4),
        human("closed", "open", edit=7),
        seen("open", title="t2"),  # a look (another field changed): still open
    ]
    assert round_trips(events) == {4, 7}


def test_a_look_in_the_middle_of_the_round_trip_observed_it() -> None:
    events = [
        *created(),
        seen("open"),
        human("open", "closed", edit=4),
        seen("closed"),
        human("closed", "open", edit=7),
    ]
    assert round_trips(events) == set()


def test_a_late_look_at_the_middle_value_observed_it() -> None:
    # A stale webhook carrying "closed", processed after the tracker was open again.
    events = [
        *created(),
        seen("open"),
        human("open", "closed", edit=4),
        human("closed", "open", edit=7),
        seen("closed"),
    ]
    assert round_trips(events) == set()


def test_the_middle_value_seen_after_the_fields_next_change_is_that_change() -> None:
    # Seed 8 (trello): after the unseen round trip, our push closes the card and the
    # service sees "closed" — its own write, not the human's old value.
    events = [
        *created(),
        seen("open"),
        human("open", "closed", edit=4),
        human("closed", "open", edit=12),
        seen("open", title="t2"),
        ours("open", "closed"),
        seen("closed", title="t2"),
    ]
    assert round_trips(events) == {4, 12}


def test_a_service_that_believed_another_value_before_the_round_trip_is_not_excused() -> None:
    events = [
        *created(state="closed"),
        seen("closed"),
        ours("closed", "open"),  # our write; its answer not seen yet
        human("open", "closed", edit=5),
        human("closed", "open", edit=6),
        seen("open"),
    ]
    assert round_trips(events) == set()


def test_without_any_look_before_the_round_trip_nothing_is_excused() -> None:
    events = [*created(), human("open", "closed", edit=2), human("closed", "open", edit=3)]
    assert round_trips(events) == set()


def test_a_value_put_back_by_the_service_is_no_round_trip_of_humans() -> None:
    events = [
        *created(),
        seen("open"),
        human("open", "closed", edit=2),
        ours("closed", "open"),
        seen("open"),
    ]
    assert round_trips(events) == set()


def test_edits_that_do_not_come_back_are_not_excused() -> None:
    events = [
        *created(),
        seen("open"),
        human("open", "closed", edit=2),
        human("closed", "reopened", edit=3),
    ]
    assert round_trips(events) == set()


def test_only_the_round_trip_is_excused_not_the_edit_after_it() -> None:
    events = [
        *created(),
        seen("open"),
        human("open", "closed", edit=2),
        human("closed", "open", edit=3),
        human("open", "closed", edit=5),
        seen("closed"),
    ]
    assert round_trips(events) == {2, 3}


def test_changes_of_other_fields_do_not_break_a_round_trip() -> None:
    events = [
        *created(),
        seen("open"),
        human("open", "closed", edit=2),
        human("t", "t2", edit=3, field="title"),
        human("closed", "open", edit=4),
        seen("open", title="t2"),
    ]
    assert round_trips(events) == {2, 4}


# --- check (e): the service never sees a value the tracker did not hold ------------------------


def test_every_value_the_service_saw_was_held_before_it_saw_it() -> None:
    events = [
        *created(),
        seen("open"),
        human("open", "closed", edit=2),
        seen("closed"),
        ours("closed", "open"),
        seen("open"),
    ]
    assert unheld_values(events, _equal) == []


def test_a_value_the_tracker_never_held_is_reported() -> None:
    events = [*created(), seen("open", title="made up")]
    assert unheld_values(events, _equal) == ["title 'made up'"]


def test_a_value_seen_before_the_tracker_held_it_is_reported() -> None:
    events = [*created(), seen("closed"), human("open", "closed", edit=3)]
    assert unheld_values(events, _equal) == ["state 'closed'"]
