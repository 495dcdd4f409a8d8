"""One row's decision, against the in-memory Pardot (decision logic only): which
prospect gets the value, when nothing is written, and what the identity map learns."""

from __future__ import annotations

import pytest

from server.backfill.model import Conflict, RowOutcome
from server.backfill.run import LookupFieldNotStored, backfill_row
from server.backfill.source import CsvRow
from strategies.core.model import Prospect, field_namespace
from support.memory_gateway import MemoryGateway

ORG = field_namespace("org_id")


def pardot(dry_run: bool = False) -> MemoryGateway:
    return MemoryGateway(api_version=4, dry_run=dry_run)


def row(email: str = "ann@example.com", value: str = "o-1", line: int = 2) -> CsvRow:
    return CsvRow(line, email, value)


async def test_the_empty_field_gets_the_value_and_the_map_learns_it() -> None:
    gateway = pardot()
    ann = gateway.seed(email="ann@example.com")
    result = await backfill_row(gateway, row(), "org_id")
    assert (result.outcome, result.prospect_id) == (RowOutcome.SET, ann)
    assert gateway.prospects[ann]["org_id"] == "o-1"
    assert gateway.ops == ["read_by_email", "update_by_id"]
    assert await gateway.identity.lookup(ORG, "o-1") == ann


async def test_a_prospect_holding_the_value_is_already_set_with_no_write() -> None:
    gateway = pardot()
    ann = gateway.seed(email="ann@example.com", org_id="o-1")
    result = await backfill_row(gateway, row(), "org_id")
    assert (result.outcome, result.prospect_id) == (RowOutcome.ALREADY_SET, ann)
    assert gateway.ops == ["read_by_email"]
    assert await gateway.identity.lookup(ORG, "o-1") == ann


async def test_a_numeric_value_from_pardot_matches_its_text() -> None:
    gateway = pardot()
    ann = gateway.seed(email="ann@example.com", org_id=42)
    result = await backfill_row(gateway, row(value="42"), "org_id")
    assert (result.outcome, result.prospect_id) == (RowOutcome.ALREADY_SET, ann)


async def test_another_value_is_a_conflict_and_never_overwritten() -> None:
    gateway = pardot()
    ann = gateway.seed(email="ann@example.com", org_id="o-9")
    result = await backfill_row(gateway, row(), "org_id")
    assert result.outcome is RowOutcome.CONFLICT
    assert result.conflicts == (Conflict(ann, "o-9"),)
    assert gateway.prospects[ann]["org_id"] == "o-9"
    assert gateway.ops == ["read_by_email"]
    assert await gateway.identity.lookup(ORG, "o-1") is None


async def test_no_prospect_with_the_email_is_not_found() -> None:
    gateway = pardot()
    gateway.seed(email="bob@example.com")
    result = await backfill_row(gateway, row(), "org_id")
    assert result.outcome is RowOutcome.NOT_FOUND
    assert gateway.ops == ["read_by_email"]


async def test_a_shared_email_claims_the_oldest_empty_prospect_only() -> None:
    gateway = pardot()
    other = gateway.seed(email="team@example.com", org_id="o-other")
    oldest_empty = gateway.seed(email="team@example.com")
    newer_empty = gateway.seed(email="team@example.com")
    result = await backfill_row(gateway, row("team@example.com", "o-1"), "org_id")
    assert (result.outcome, result.prospect_id) == (RowOutcome.SET, oldest_empty)
    assert gateway.prospects[other]["org_id"] == "o-other"
    assert "org_id" not in gateway.prospects[newer_empty]
    # The next user sharing the email gets the next empty one, not a conflict.
    second = await backfill_row(gateway, row("team@example.com", "o-2"), "org_id")
    assert (second.outcome, second.prospect_id) == (RowOutcome.SET, newer_empty)


async def test_several_holders_name_the_oldest_as_the_strategy_does() -> None:
    gateway = pardot()
    first = gateway.seed(email="ann@example.com", org_id="o-1")
    gateway.seed(email="ann@example.com", org_id="o-1")
    result = await backfill_row(gateway, row(), "org_id")
    assert result.prospect_id == first
    assert await gateway.identity.lookup(ORG, "o-1") == first


async def test_every_prospect_holding_another_value_is_listed_in_the_conflict() -> None:
    gateway = pardot()
    a = gateway.seed(email="team@example.com", org_id="o-a")
    b = gateway.seed(email="team@example.com", org_id="o-b")
    result = await backfill_row(gateway, row("team@example.com", "o-c"), "org_id")
    assert result.conflicts == (Conflict(a, "o-a"), Conflict(b, "o-b"))


async def test_a_dry_run_plans_the_write_and_teaches_the_map_nothing() -> None:
    gateway = pardot(dry_run=True)
    ann = gateway.seed(email="ann@example.com")
    planned: dict[int, str] = {}
    result = await backfill_row(gateway, row(), "org_id", planned=planned)
    assert (result.outcome, result.prospect_id) == (RowOutcome.SET, ann)
    assert "org_id" not in gateway.prospects[ann]
    assert await gateway.identity.lookup(ORG, "o-1") is None
    # A later row with the same email sees the planned value, as a real run would.
    assert planned == {ann: "o-1"}
    again = await backfill_row(gateway, row(value="o-2"), "org_id", planned=planned)
    assert again.outcome is RowOutcome.CONFLICT
    assert again.conflicts == (Conflict(ann, "o-1"),)
    same = await backfill_row(gateway, row(value="o-1"), "org_id", planned=planned)
    assert same.outcome is RowOutcome.ALREADY_SET
    assert await gateway.identity.lookup(ORG, "o-1") is None


async def test_a_field_pardot_does_not_keep_stops_with_what_to_create() -> None:
    gateway = pardot()
    gateway.seed(email="ann@example.com")

    async def drops_the_field(prospect_id: int, fields: dict[str, str]) -> Prospect:
        gateway.calls.append(("update_by_id", prospect_id))
        return await MemoryGateway.update_by_id(gateway, prospect_id, {})

    gateway.update_by_id = drops_the_field  # type: ignore[method-assign]
    with pytest.raises(LookupFieldNotStored) as caught:
        await backfill_row(gateway, row(), "org_id")
    assert "create the custom field 'org_id'" in caught.value.message
    assert await gateway.identity.lookup(ORG, "o-1") is None


async def test_a_value_pardot_stores_changed_stops_with_why() -> None:
    gateway = pardot()
    gateway.seed(email="ann@example.com")

    async def stores_a_number(prospect_id: int, fields: dict[str, str]) -> Prospect:
        gateway.calls.append(("update_by_id", prospect_id))
        return await MemoryGateway.update_by_id(gateway, prospect_id, {"org_id": 42})  # type: ignore[dict-item]

    gateway.update_by_id = stores_a_number  # type: ignore[method-assign]
    with pytest.raises(LookupFieldNotStored) as caught:
        await backfill_row(gateway, row(value="042"), "org_id")
    assert "stored it as '42'" in caught.value.message
    assert "make 'org_id' a text field" in caught.value.message
