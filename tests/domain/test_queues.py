"""Queue configuration: members with priority, kept in step with the older id list."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from callbridge.domain.directory import Queue, QueueStrategy, members_for_ids


def queue(**fields: object) -> Queue:
    return Queue.model_validate({"id": "q1", "tenant_id": "t1", "name": "Q", **fields})


def test_defaults() -> None:
    q = queue()
    assert (q.strategy, q.ring_timeout_s, q.wrapup_s, q.max_wait_s, q.max_length) == (
        QueueStrategy.LONGEST_IDLE,
        20,
        0,
        None,
        None,
    )
    assert (q.overflow, q.max_consecutive_misses, q.members, q.required_skills) == (None, 0, [], [])


def test_strategies() -> None:
    assert [s.value for s in QueueStrategy] == [
        "longest_idle",
        "round_robin",
        "ring_all",
        "fewest_calls",
        "least_talk_time",
        "skills",
    ]


def test_an_old_document_with_only_member_ids_gets_priority_one_members() -> None:
    q = queue(member_extension_ids=["a", "b"])
    assert [(m.extension_id, m.priority) for m in q.members] == [("a", 1), ("b", 1)]


def test_members_win_and_the_id_list_follows_them() -> None:
    q = queue(members=[{"extension_id": "b", "priority": 3}], member_extension_ids=["a"])
    assert q.member_extension_ids == ["b"]
    assert Queue.model_validate_json(q.model_dump_json()) == q


def test_members_for_ids_keeps_known_priorities() -> None:
    q = queue(members=[{"extension_id": "a", "priority": 7}])
    assert members_for_ids(q, ["c", "a"]) == [
        {"extension_id": "c", "priority": 1},
        {"extension_id": "a", "priority": 7},
    ]


@pytest.mark.parametrize(
    "fields",
    [
        {"ring_timeout_s": 4},
        {"wrapup_s": -1},
        {"members": [{"extension_id": "a", "priority": 0}]},
        {"required_skills": [{"skill_id": "s", "min_proficiency": 101}]},
        {"overflow": {"kind": "voicemail", "target": "x"}},
        {"strategy": "random"},
    ],
)
def test_out_of_range_settings_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        queue(**fields)
