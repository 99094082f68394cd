"""The tolerant parse of ``{"request": …}`` bodies: the spec's own example has a trailing comma."""

from __future__ import annotations

import pytest

from callbridge.api.ccs.errors import CcsError
from callbridge.api.ccs.request_body import action_of, parse_object, strip_trailing_commas


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1,}', '{"a": 1}'),
        ('{"a": [1, 2, ] , }', '{"a": [1, 2 ]  }'),
        ('{"a": ",}", "b": "\\",]"}', '{"a": ",}", "b": "\\",]"}'),  # commas inside strings stay
        ('{"a": 1, "b": 2}', '{"a": 1, "b": 2}'),
    ],
)
def test_strip_trailing_commas(text: str, expected: str) -> None:
    assert strip_trailing_commas(text) == expected


def test_the_spec_example_body_parses() -> None:
    body = parse_object(b'{ "request": "updateAgentState", "name": "Lunch Break", }')
    assert body == {"request": "updateAgentState", "name": "Lunch Break"}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "a JSON request body is required"),
        (b"\xff", "the request body is not UTF-8"),
        (b"[1]", "the request body must be a JSON object"),
        (b'{"a": 1,,}', "the request body is not valid JSON"),
    ],
)
def test_bad_bodies_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(CcsError) as refused:
        parse_object(raw)
    assert refused.value.reason.startswith(reason) and refused.value.status == 400


def test_the_action_must_be_one_of_the_allowed() -> None:
    assert action_of({"request": "kill"}, ("kill",)) == "kill"
    with pytest.raises(CcsError, match='unknown request 5: expected one of "kill"'):
        action_of({"request": 5}, ("kill",))
    with pytest.raises(CcsError, match='"request" is required'):
        action_of({}, ("kill",))
