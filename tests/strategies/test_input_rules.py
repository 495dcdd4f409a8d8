"""Issue 12, items 4, 5, 13 and 14 in the strategies' own terms (no network): Pardot's
parameter names are no fields, a message quotes input within bounds, lookup values are
trimmed, and a null trait clears its field."""

from __future__ import annotations

import pytest

from strategies.core.errors import (
    MESSAGE_MAX_BYTES,
    QUOTE_MAX_CHARS,
    InvalidArgument,
    ProspectSyncError,
    quoted,
)
from strategies.core.model import Event, Settings
from strategies.core.pardot_facts import is_pardot_parameter
from strategies.email_v3 import EmailV3
from strategies.email_v5 import EmailV5
from strategies.fields import prospect_fields
from strategies.id_fid_v4 import IdFidV4
from strategies.lookup_field_v4 import LookupFieldV4
from strategies.user_id_lookup_v4 import UserIdLookupV4
from strategies.validation import check_field_id
from support.memory_gateway import MemoryGateway

ORG = Settings(api_version=4, lookup_field="org_id")
BY_USER = Settings(api_version=4, lookup_field="org_id", use_user_id_as_lookup_value=True)
TOM = {"email": "tom@example.com"}

# --- item 4 -------------------------------------------------------------------------------

PARAMETERS = ["api_key", "user_key", "access_token", "format", "output", "prospects", "fid"]
PARAMETERS += ["user_id", "list_12", "profile_criteria_3", "Api_Key", "FORMAT", "LIST_7"]


@pytest.mark.parametrize("name", PARAMETERS)
def test_a_pardot_parameter_name_is_no_field_id(name: str) -> None:
    assert is_pardot_parameter(name)
    with pytest.raises(InvalidArgument) as caught:
        check_field_id(name, f"traits.{name}")
    assert caught.value.field == f"traits.{name}"
    assert "parameter Pardot reads" in caught.value.message


@pytest.mark.parametrize("name", ["org_id", "listing", "list_name", "formats", "id_0", "plan"])
def test_field_ids_that_only_look_alike_pass(name: str) -> None:
    assert not is_pardot_parameter(name)
    assert check_field_id(name, "traits.x") == name


@pytest.mark.parametrize(
    ("strategy", "settings", "extra"),
    [
        (EmailV3(), Settings(api_version=3), {}),
        (LookupFieldV4(), ORG, {"org_id": "o-1"}),
        (IdFidV4(), ORG, {}),
        (EmailV5(), Settings(api_version=5), {}),
    ],
    ids=["EmailV3", "LookupFieldV4", "IdFidV4", "EmailV5"],
)
async def test_every_strategy_refuses_a_parameter_trait_before_any_call(
    strategy, settings: Settings, extra: dict[str, str]
) -> None:
    pardot = MemoryGateway(api_version=settings.api_version)
    event = Event(traits={**TOM, **extra, "format": "xml"}, pardot_id="7")
    with pytest.raises(InvalidArgument) as caught:
        await strategy.sync(event, settings, pardot)
    assert caught.value.field == "traits.format"
    assert pardot.ops == []


async def test_a_lookup_field_named_like_a_parameter_is_refused() -> None:
    pardot = MemoryGateway(api_version=4)
    settings = Settings(api_version=4, lookup_field="output")
    with pytest.raises(InvalidArgument) as caught:
        await LookupFieldV4().sync(Event(traits={**TOM, "output": "x"}), settings, pardot)
    assert caught.value.field == "settings.lookup_field"
    assert pardot.ops == []


# --- item 5 -------------------------------------------------------------------------------


def test_a_long_value_is_quoted_cut_with_its_length() -> None:
    text = quoted("x" * 100_000)
    assert text.startswith("'" + "x" * QUOTE_MAX_CHARS + "'…")
    assert text.endswith("(100,000 characters)")
    assert quoted("short") == "'short'"


@pytest.mark.parametrize("unit", ["x", "é", "😀"])
def test_every_message_and_violation_is_capped_in_bytes(unit: str) -> None:
    huge = unit * 100_000
    error = InvalidArgument("pardot.id", f"must be a prospect id, not {huge}")
    assert len(error.message.encode()) <= MESSAGE_MAX_BYTES
    assert error.message.startswith("pardot.id must be a prospect id")
    assert "characters in all" in error.message
    [(field, description)] = error.violations
    assert field == "pardot.id" and len(description.encode()) <= MESSAGE_MAX_BYTES
    other = ProspectSyncError(f"settings.connection names {huge!r}")
    assert len(other.message.encode()) <= MESSAGE_MAX_BYTES


# --- item 13 ------------------------------------------------------------------------------


@pytest.mark.parametrize("spaced", [" X", "X ", "\tX\n", "\u00a0X\u2003"])
async def test_lookup_field_trims_its_value_so_one_person_is_one_prospect(spaced: str) -> None:
    pardot = MemoryGateway(api_version=4)
    first = await LookupFieldV4().sync(Event(traits={**TOM, "org_id": spaced}), ORG, pardot)
    again = await LookupFieldV4().sync(Event(traits={**TOM, "org_id": "X"}), ORG, pardot)
    assert again.prospect.id == first.prospect.id
    assert [p["org_id"] for p in pardot.prospects.values()] == ["X"]


async def test_lookup_field_finds_a_value_pardot_holds_with_spaces() -> None:
    pardot = MemoryGateway(api_version=4)
    held = pardot.seed(email=TOM["email"], org_id=" X ")
    result = await LookupFieldV4().sync(Event(traits={**TOM, "org_id": "X"}), ORG, pardot)
    assert result.prospect.id == held and len(pardot.prospects) == 1


async def test_user_id_lookup_trims_the_user_id() -> None:
    pardot = MemoryGateway(api_version=4)
    first = await UserIdLookupV4().sync(Event(user_id=" u-1\t", traits=TOM), BY_USER, pardot)
    again = await UserIdLookupV4().sync(Event(user_id="u-1", traits=TOM), BY_USER, pardot)
    assert again.prospect.id == first.prospect.id
    assert [p["org_id"] for p in pardot.prospects.values()] == ["u-1"]


@pytest.mark.parametrize(
    ("strategy", "event", "field"),
    [
        (LookupFieldV4(), Event(traits={**TOM, "org_id": "   "}), "traits.org_id"),
        (LookupFieldV4(), Event(traits={**TOM, "org_id": "o" * 256}), "traits.org_id"),
        (UserIdLookupV4(), Event(user_id=" \t ", traits=TOM), "user_id"),
        (UserIdLookupV4(), Event(user_id="u" * 256, traits=TOM), "user_id"),
    ],
    ids=["blank-trait", "long-trait", "blank-user-id", "long-user-id"],
)
async def test_a_blank_or_overlong_lookup_value_is_refused(strategy, event: Event, field: str):
    pardot = MemoryGateway(api_version=4)
    settings = BY_USER if isinstance(strategy, UserIdLookupV4) else ORG
    with pytest.raises(InvalidArgument) as caught:
        await strategy.sync(event, settings, pardot)
    assert caught.value.field == field
    assert pardot.ops == []


# --- item 14 ------------------------------------------------------------------------------


def test_a_null_trait_clears_its_standard_field() -> None:
    mapped = prospect_fields(
        {**TOM, "phone": None, "company": None, "address": {"city": None}, "plan": None}
    )
    assert mapped.fields == {**TOM, "phone": "", "company": "", "city": "", "plan": ""}


def test_a_null_never_clears_the_email_nor_beats_another_source() -> None:
    assert prospect_fields({"email": None, "firstName": "Tom", "first_name": None}).fields == {
        "first_name": "Tom"
    }


def test_a_null_object_leaves_its_fields_alone() -> None:
    assert prospect_fields({**TOM, "address": None}).fields == TOM
