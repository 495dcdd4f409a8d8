"""``strategies.forget``: which identifiers a Forget records and an event carries (no
I/O). The end-to-end guarantees are in tests/e2e/test_forget.py."""

from __future__ import annotations

import pytest

from strategies.core.errors import InvalidArgument, Reason
from strategies.core.model import Event, Settings
from strategies.forget import event_identifiers, forget_target

ORG = Settings(lookup_field="org_id")


def target(settings: Settings = ORG, **keys: str) -> tuple[str, ...]:
    values = {"email": "", "user_id": "", "lookup_value": "", "pardot_id": "", **keys}
    return forget_target(settings=settings, **values).identifiers()


def test_each_key_is_one_identifier_and_a_user_id_is_recorded_both_ways() -> None:
    assert target(email="Ann@Example.COM") == ("email:ann@example.com",)
    assert target(pardot_id="42") == ("id:42",)
    assert target(lookup_value=" o-1 ") == ("field:org_id:o-1",)
    assert target(user_id="u-1") == ("field:org_id:u-1", "user:u-1")


def test_what_an_event_carries_meets_what_forget_recorded() -> None:
    forgotten = set(target(email="ann@example.com", user_id="u-1"))
    by_user = Settings(lookup_field="org_id", use_user_id_as_lookup_value=True)
    assert forgotten & set(event_identifiers(Event(user_id="u-1"), by_user))
    assert forgotten & set(event_identifiers(Event(traits={"email": "ANN@example.com"}), ORG))
    assert not forgotten & set(event_identifiers(Event(traits={"org_id": "u-2"}), ORG))
    assert event_identifiers(Event(pardot_id="42"), Settings()) == ("id:42",)


@pytest.mark.parametrize(
    ("keys", "settings", "field", "reason"),
    [
        ({}, ORG, "email", Reason.FORGET_NEEDS_A_KEY),
        ({"user_id": "u"}, Settings(), "settings.lookup_field", Reason.INVALID_ARGUMENT),
        ({"lookup_value": "v"}, Settings(), "settings.lookup_field", Reason.INVALID_ARGUMENT),
        ({"pardot_id": "-1"}, ORG, "pardot_id", Reason.INVALID_ARGUMENT),
        ({"email": "a@b"}, ORG, "email", Reason.INVALID_ARGUMENT),
        ({"user_id": "u" * 256}, ORG, "user_id", Reason.INVALID_ARGUMENT),
    ],
)
def test_bad_keys_are_invalid_arguments_naming_the_field(
    keys: dict[str, str], settings: Settings, field: str, reason: Reason
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        target(settings, **keys)
    assert caught.value.field == field and caught.value.reason == reason.name
