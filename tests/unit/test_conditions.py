"""The one helper that sets conditions, and the Ready summary."""

import datetime

import pytest

from chkmate.api import conditions as conds

T0 = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
T1 = T0 + datetime.timedelta(minutes=5)


def make(type_: str, status: conds.ConditionStatus, reason: str = "R", at: datetime.datetime = T0) -> conds.Condition:
    return conds.Condition(type=type_, status=status, reason=reason, last_transition_time=conds.timestamp(at))


def test_timestamp_is_rfc3339_utc_seconds() -> None:
    local = datetime.datetime(2026, 1, 1, 13, 0, 0, 123456, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    assert conds.timestamp(local) == "2026-01-01T12:00:00Z"


def test_new_condition_is_appended_with_now() -> None:
    result = conds.set_condition((), type_="Synced", status=conds.TRUE, reason="InSync", generation=3, now=T0)
    assert result == (
        conds.Condition(type="Synced", status="True", reason="InSync", message="",
                        last_transition_time="2026-01-01T12:00:00Z", observed_generation=3),
    )


@pytest.mark.parametrize(
    ("old_status", "new_status", "expected_time"),
    [
        ("True", "True", T0),  # same status: time kept even though reason and message change
        ("True", "False", T1),
        ("False", "Unknown", T1),
        ("Unknown", "Unknown", T0),
    ],
)
def test_last_transition_time_moves_only_when_status_changes(
    old_status: conds.ConditionStatus, new_status: conds.ConditionStatus, expected_time: datetime.datetime
) -> None:
    before = (make("Ready", old_status, "Old"),)
    after = conds.set_condition(before, type_="Ready", status=new_status, reason="New", message="m",
                                generation=2, now=T1)
    assert after[0].last_transition_time == conds.timestamp(expected_time)
    assert (after[0].reason, after[0].message, after[0].observed_generation) == ("New", "m", 2)


def test_set_keeps_order_and_other_conditions() -> None:
    before = (make("A", "True"), make("B", "False"), make("C", "True"))
    after = conds.set_condition(before, type_="B", status=conds.TRUE, reason="X", generation=1, now=T1)
    assert [c.type for c in after] == ["A", "B", "C"]
    assert after[0] == before[0] and after[2] == before[2]


@pytest.mark.parametrize(
    ("present", "depends_on", "expected"),
    [
        ([], [], ("True", "Succeeded")),
        ([("Synced", "True", "InSync")], ["Synced"], ("True", "Succeeded")),
        ([("Synced", "False", "BranchNotFound")], ["Synced"], ("False", "BranchNotFound")),
        ([], ["Synced"], ("Unknown", "Progressing")),
        ([("Synced", "Unknown", "Waiting")], ["Synced"], ("Unknown", "Waiting")),
        # Negative polarity: Conflict=True and Drifted=True are bad, False is good.
        ([("Synced", "True", "InSync"), ("Conflict", "True", "ConflictOpened")], ["Synced", "Conflict"],
         ("False", "ConflictOpened")),
        ([("Synced", "True", "InSync"), ("Conflict", "False", "NoConflict")], ["Synced", "Conflict"],
         ("True", "Succeeded")),
        # An absent abnormal-true condition is good news, not a pending one.
        ([("Planned", "True", "Succeeded")], ["Planned", "Drifted"], ("True", "Succeeded")),
        # Stalled wins over everything.
        ([("Stalled", "True", "InvalidSpec"), ("Synced", "True", "InSync")], ["Synced"], ("False", "InvalidSpec")),
        # A bad condition wins over a pending one, whatever the order.
        ([("Planned", "Unknown", "Progressing"), ("Drifted", "True", "InfrastructureDrift")],
         ["Planned", "Drifted"], ("False", "InfrastructureDrift")),
        # Reconciling=True keeps Ready Unknown even when the rest is good.
        ([("Synced", "True", "InSync"), ("Reconciling", "True", "Pushing")], ["Synced"], ("Unknown", "Pushing")),
    ],
)
def test_summarize_ready(
    present: list[tuple[str, conds.ConditionStatus, str]], depends_on: list[str], expected: tuple[str, str]
) -> None:
    before = tuple(make(t, s, r) for t, s, r in present)
    after = conds.summarize(before, depends_on=depends_on, generation=1, now=T1)
    ready = conds.find(after, "Ready")
    assert ready is not None
    assert (ready.status, ready.reason) == expected


def test_summarize_keeps_ready_transition_time_when_unchanged() -> None:
    before = (make("Synced", "True"), make("Ready", "True", "Succeeded", at=T0))
    after = conds.summarize(before, depends_on=["Synced"], generation=1, now=T1)
    ready = conds.find(after, "Ready")
    assert ready is not None and ready.last_transition_time == conds.timestamp(T0)
