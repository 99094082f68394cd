"""DID numbers: normalisation, validation and matching a To user part (#3)."""

from __future__ import annotations

import pytest

from callbridge.domain.dids import Did, check_did_number, check_did_target, find_did, normalise_did
from callbridge.domain.errors import Invalid


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("+1 415 555 0100", "+14155550100"),
        ("415-555-0100", "4155550100"),
        ("(415) 555.0100", "4155550100"),
        ("+14155550100", "+14155550100"),
        ("112", "112"),
    ],
)
def test_normalisation_strips_separators_and_keeps_the_plus(raw: str, normal: str) -> None:
    assert normalise_did(raw) == normal
    assert check_did_number(raw) == normal


@pytest.mark.parametrize("raw", ["", "+", "12", "1234567890123456", "41a5550100", "++1415555"])
def test_malformed_numbers_are_refused(raw: str) -> None:
    with pytest.raises(Invalid) as exc:
        check_did_number(raw)
    assert exc.value.code == "did_number_malformed"


@pytest.mark.parametrize("target", ["19735550100", "+14155550100", "7", "705", "abc"])
def test_a_target_is_an_internal_number_only(target: str) -> None:
    with pytest.raises(Invalid) as exc:
        check_did_target(target)
    assert exc.value.code == "did_target_invalid"
    assert check_did_target("112") == "112"


def test_a_to_user_part_matches_exactly_or_normalised_and_the_plus_matters() -> None:
    did = Did(id="d1", tenant_id="t", number="+14155550100", target="112")
    table = {did.number: did}
    assert find_did(table, "+14155550100") is did
    assert find_did(table, "+1-415-555-0100") is did
    assert find_did(table, "14155550100") is None  # no guessing of the +
    assert find_did(table, "4155550100") is None
