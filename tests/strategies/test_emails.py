"""One email, one prospect (issue 15, "Email case"): the email as every path of a call
uses it. Pardot matches emails case-sensitively and makes a second prospect for a case
variant (Segment's Pardot (Actions) destination: "Pardot treats email address as case
sensitive and will create multiple prospects for casing differences",
segmentio/action-destinations PR 699); a domain is case-insensitive (RFC 4343), a local
part may not be (RFC 5321 §2.4), so only a second setting folds it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from strategies.core.errors import InvalidArgument
from strategies.core.model import Event, Settings
from strategies.emails import normalize_email, normalized

ON = Settings()
LOCAL = Settings(normalize_email_local_part=True)
OFF = Settings(normalize_email=False, normalize_email_local_part=True)


def test_the_domain_is_lower_cased_by_default_and_the_local_part_kept() -> None:
    assert ON.normalize_email and not ON.normalize_email_local_part
    assert normalize_email("Ann@Example.COM", ON) == "Ann@example.com"
    assert normalize_email("ANN@example.com", ON) == "ANN@example.com"


def test_the_second_setting_lower_cases_the_local_part_too() -> None:
    assert normalize_email("ANN@Example.COM", LOCAL) == "ann@example.com"
    assert normalize_email("ann@example.com", LOCAL) == "ann@example.com"


def test_with_normalize_email_off_the_email_goes_as_sent_whatever_the_second_setting() -> None:
    assert normalize_email("Ann@Example.COM", OFF) == "Ann@Example.COM"


def test_surrounding_spaces_go_as_the_email_check_trims_them() -> None:
    assert normalize_email("  Ann@Example.COM ", ON) == "Ann@example.com"


def test_only_ascii_letters_are_folded_an_internationalized_domain_keeps_its_own() -> None:
    # "Ä".lower() is "ä", but which Unicode case-folding a domain's owner registered is
    # IDNA's question (UTS #46), not str.lower's: only A-Z is folded, as DNS folds it.
    assert normalize_email("Ann@BÜCHER.Example", ON) == "Ann@bÜcher.example"
    assert normalize_email("ÅSA@Example.COM", LOCAL) == "Åsa@example.com"


def test_the_dotless_capital_i_is_not_turned_into_two_characters() -> None:
    # "İ".lower() is "i̇" (two code points): str.lower would change the address's length.
    assert normalize_email("İ@EXAMPLE.com", LOCAL) == "İ@example.com"


def test_a_value_that_is_not_an_email_is_left_for_the_email_check_to_name() -> None:
    assert normalize_email("no-at-sign", ON) == "no-at-sign"
    assert normalize_email("", ON) == ""


def test_normalized_replaces_the_email_trait_and_nothing_else() -> None:
    event = Event(traits={"email": "Ann@Example.COM", "first_name": "Ann", "org_id": "O-1"})
    out = normalized(event, ON)
    assert out.traits == {"email": "Ann@example.com", "first_name": "Ann", "org_id": "O-1"}
    assert out.email == "Ann@example.com"
    assert event.traits["email"] == "Ann@Example.COM"  # the caller's event is not changed


def test_normalized_leaves_an_event_whose_email_is_already_normal_as_it_is() -> None:
    event = Event(traits={"email": "ann@example.com"})
    assert normalized(event, ON) is event
    assert normalized(replace(event, traits={"first_name": "A"}), ON).traits == {"first_name": "A"}


def test_normalized_leaves_a_non_string_email_for_the_strategy_to_refuse() -> None:
    event = Event(traits={"email": 42})
    assert normalized(event, ON) is event


def test_normalized_with_the_setting_off_is_the_event_as_sent() -> None:
    event = Event(traits={"email": "Ann@Example.COM"})
    assert normalized(event, OFF) is event


@pytest.mark.parametrize("email", ["Ann@Example.COM", "ANN@EXAMPLE.COM"])
def test_a_normalized_email_still_passes_pardots_rule(email: str) -> None:
    from strategies.validation import check_email

    assert check_email(normalize_email(email, LOCAL), "traits.email") == "ann@example.com"


def test_a_bad_email_is_still_refused_under_its_field_after_normalizing() -> None:
    from strategies.validation import require_email

    event = normalized(Event(traits={"email": "Ann@Example"}), ON)
    with pytest.raises(InvalidArgument) as caught:
        require_email(event, "for API v3 (EmailV3)")
    assert caught.value.field == "traits.email"
