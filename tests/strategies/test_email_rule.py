"""Pardot's email rule, checked before anything is sent, on every path an email takes to
Pardot (PARDOT_API.md, "Error codes", err 4: ``^[^ @]{1,64}@[^ @]{1,255}\\.[^ @]{2,13}$``,
at most 255 characters). Issue 12: ``a@b.com/../../login`` reached Pardot as a prospect's
email through IdFidV4 and through an identity-map hit, which never checked it.

Each path against the in-memory gateway: the call is INVALID_ARGUMENT naming the field
and what is wrong, and no Pardot call is made."""

from __future__ import annotations

from typing import Any

import pytest

from strategies.core.errors import InvalidArgument
from strategies.core.model import Event, Settings, TrackMapping, field_namespace
from strategies.core.pardot_facts import EMAIL_PATTERN
from strategies.create_v4 import CreateV4
from strategies.email_v3 import EmailV3
from strategies.fields import prospect_fields
from strategies.id_fid_v4 import IdFidV4
from strategies.lookup_field_v4 import LookupFieldV4
from strategies.track import identity_event, plan_track
from strategies.user_id_lookup_v4 import UserIdLookupV4
from strategies.validation import check_email
from support.memory_gateway import MemoryGateway

LONG_TLD = "ann@example.abcdefghijklmn"  # RFC-valid; Pardot's top-level domain is ≤ 13
PATH_TRICK = "a@b.com/../../login"  # Pardot's pattern lets it through; the RFC does not
TLD_SAYS = "its top-level domain is longer than Pardot's 13 characters"

V3 = Settings(api_version=3)
ORG = Settings(api_version=4, lookup_field="org_id")
BY_USER = Settings(api_version=4, lookup_field="org_id", use_user_id_as_lookup_value=True)
CREATE = Settings(api_version=4, create_when_unmatched=True)
FID = "00339000033ZUR6"


def identify(user_id: str = "", pardot_id: str = "", pardot_fid: str = "", **traits: Any) -> Event:
    return Event(user_id=user_id, pardot_id=pardot_id, pardot_fid=pardot_fid, traits=traits)


# --- the rule itself --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "says"),
    [
        (LONG_TLD, TLD_SAYS),
        ("ann@example.c", "its top-level domain is shorter than Pardot's 2 characters"),
        ("a" * 65 + "@example.com", "its part before the @ has 65 characters, more than"),
        (PATH_TRICK, "is not a valid email address"),
        ("not-an-email", "is not a valid email address"),
    ],
)
def test_what_is_wrong_is_named(email: str, says: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_email(email, "traits.email")
    assert caught.value.field == "traits.email"
    assert says in caught.value.message
    assert caught.value.code.name == "INVALID_ARGUMENT"


def test_the_pattern_is_pardots_and_the_length_is_255() -> None:
    assert EMAIL_PATTERN.pattern == r"^[^ @]{1,64}@[^ @]{1,255}\.[^ @]{2,13}$"
    assert check_email("  ann@example.museum  ", "traits.email") == "ann@example.museum"
    domain = "b" * 62 + "." + "b" * 62 + "." + "b" * 60 + ".com"
    longest = "a" * 63 + "@" + domain  # 254: the RFC's limit (email-validator), under Pardot's
    assert check_email(longest, "f") == longest
    with pytest.raises(InvalidArgument, match="too long"):
        check_email("a" + longest, "f")
    with pytest.raises(InvalidArgument, match="256 characters long; Pardot takes at most 255"):
        check_email("aa" + longest, "f")


def test_mapped_traits_carry_a_checked_email() -> None:
    assert prospect_fields({"email": " ann@example.com "}).fields == {"email": "ann@example.com"}
    with pytest.raises(InvalidArgument) as caught:
        prospect_fields({"email": LONG_TLD}, path="context.traits")
    assert caught.value.field == "context.traits.email"


# --- every strategy path -------------------------------------------------------------------


async def refused(strategy: Any, event: Event, settings: Settings, pardot: MemoryGateway) -> str:
    """The strategy refuses the event before any call; the message."""
    before = list(pardot.calls)
    with pytest.raises(InvalidArgument) as caught:
        await strategy.sync(event, settings, pardot)
    assert caught.value.field == "traits.email"
    assert pardot.calls == before
    return caught.value.message


@pytest.mark.parametrize("email", [LONG_TLD, PATH_TRICK])
async def test_email_v3_checks_it(email: str) -> None:
    await refused(EmailV3(), identify(email=email), V3, MemoryGateway(api_version=3))


@pytest.mark.parametrize("email", [LONG_TLD, PATH_TRICK])
async def test_create_v4_checks_it(email: str) -> None:
    await refused(CreateV4(), identify(email=email), CREATE, MemoryGateway(api_version=4))


@pytest.mark.parametrize("email", [LONG_TLD, PATH_TRICK])
async def test_id_fid_v4_checks_it_by_id_and_by_fid(email: str) -> None:
    pardot = MemoryGateway(api_version=4)
    known = pardot.seed(email="old@example.com", crm_contact_fid=FID)
    message = await refused(IdFidV4(), identify(pardot_id=str(known), email=email), ORG, pardot)
    assert message.startswith("traits.email is not")
    await refused(IdFidV4(), identify(pardot_fid=FID, email=email), ORG, pardot)
    assert pardot.prospects[known]["email"] == "old@example.com"


@pytest.mark.parametrize("email", [LONG_TLD, PATH_TRICK])
async def test_lookup_field_v4_checks_it_cold_and_on_an_identity_map_hit(email: str) -> None:
    pardot = MemoryGateway(api_version=4)
    await refused(LookupFieldV4(), identify(email=email, org_id="o-1"), ORG, pardot)
    first = await LookupFieldV4().sync(identify(email="ann@example.com", org_id="o-1"), ORG, pardot)
    assert await pardot.identity.lookup(field_namespace("org_id"), "o-1") == first.prospect.id
    # Warm: the map names the prospect, so the email would go straight into an update.
    message = await refused(LookupFieldV4(), identify(email=email, org_id="o-1"), ORG, pardot)
    assert "traits.email is not" in message
    assert pardot.prospects[first.prospect.id]["email"] == "ann@example.com"


async def test_user_id_lookup_v4_checks_it_on_an_identity_map_hit() -> None:
    pardot = MemoryGateway(api_version=4)
    first = await UserIdLookupV4().sync(identify("u-1", email="ann@example.com"), BY_USER, pardot)
    assert first.prospect.id is not None
    message = await refused(UserIdLookupV4(), identify("u-1", email=LONG_TLD), BY_USER, pardot)
    assert TLD_SAYS in message


# --- track -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("traits", "properties", "field"),
    [
        ({"email": LONG_TLD}, {}, "context.traits.email"),
        ({}, {"email": LONG_TLD}, "properties.email"),
        ({}, {"email": PATH_TRICK}, "properties.email"),
    ],
)
async def test_track_checks_the_identity_email_where_it_came_from(
    traits: dict[str, Any], properties: dict[str, Any], field: str
) -> None:
    settings = Settings(api_version=3, track_mappings={"Joined": TrackMapping()})
    event = Event(kind="track", name="Joined", traits=traits, properties=properties)
    with pytest.raises(InvalidArgument) as caught:
        identity_event(event, settings)
    assert caught.value.field == field


async def test_a_track_of_a_known_person_still_checks_the_email() -> None:
    """A track whose prospect is named by id (IdFidV4, no read) still never sends an
    email Pardot's rule refuses: its identity event is checked before anything."""
    settings = Settings(api_version=4, track_mappings={"Joined": TrackMapping()})
    event = Event(kind="track", name="Joined", pardot_id="7", traits={"email": LONG_TLD})
    assert plan_track(event, settings) is not None
    with pytest.raises(InvalidArgument) as caught:
        identity_event(event, settings)
    assert TLD_SAYS in caught.value.message
