"""Backfill emails are normalized as every other path normalizes them
(``strategies.emails.normalize_email``; issue 15, "Email case"): the CSV's
"Ann@EXAMPLE.COM" reads, and seeds the identity map for, the prospect the service
wrote as "Ann@example.com", instead of missing it in Pardot's case-sensitive match
(PARDOT_API.md, "Email matching is case-sensitive")."""

from __future__ import annotations

from pathlib import Path

from fakepardot import FakePardot
from server.backfill.model import RowOutcome
from server.backfill.run import BackfillOptions, run_backfill
from server.backfill.source import CsvRow, read_backfill_csv
from server.config import ServiceConfig
from strategies.core.model import Settings
from support.service import close_service, identify, open_service

from .helpers import V4, org_ids, prospect_reads, write_csv

LOCAL_PART_TOO = Settings(normalize_email_local_part=True)


def test_the_csv_emails_are_normalized_as_the_settings_ask(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "u.csv", [(" Ann@EXAMPLE.Com ", "o-1"), ("b@x.IO", "o-2")])
    assert read_backfill_csv(source).rows == (
        CsvRow(2, "Ann@example.com", "o-1"),
        CsvRow(3, "b@x.io", "o-2"),
    )
    assert read_backfill_csv(source, LOCAL_PART_TOO).rows[0].email == "ann@example.com"
    as_sent = read_backfill_csv(source, Settings(normalize_email=False)).rows
    assert as_sent[0].email == "Ann@EXAMPLE.Com"


async def test_a_case_variant_in_the_csv_finds_the_prospect_the_service_wrote(
    fake: FakePardot, config: ServiceConfig, tmp_path: Path
) -> None:
    ann = fake.state.add_prospect(V4, email="Ann@example.com")["id"]
    source = write_csv(tmp_path / "users.csv", [("Ann@EXAMPLE.COM", "o-ann")])

    tally = await run_backfill(config, BackfillOptions(lookup_field="org_id", source=source))

    assert [(r.email, r.outcome) for r in tally.results] == [("Ann@example.com", RowOutcome.SET)]
    assert prospect_reads(fake) == ["Ann@example.com"]
    assert org_ids(fake) == {ann: "o-ann"}
    # The identity map learned the value for that one prospect: the next identify, in
    # yet another spelling, updates it by id (no read, no create).
    service = await open_service(config)
    try:
        fake.state.calls.clear()
        answer = await service.stub.Identify(
            identify({"email": "Ann@Example.COM", "org_id": "o-ann"}, lookup_field="org_id")
        )
    finally:
        await close_service(service)
    assert answer.prospect_id == str(ann)
    assert not [c.path for c in fake.state.calls if "/read/" in c.path or "/create/" in c.path]
    assert [p["id"] for p in fake.state.prospects(V4)] == [ann]


async def test_the_local_part_is_folded_when_the_backfill_is_told_to(
    fake: FakePardot, config: ServiceConfig, tmp_path: Path
) -> None:
    ann = fake.state.add_prospect(V4, email="ann@example.com")["id"]
    source = write_csv(tmp_path / "users.csv", [("ANN@Example.com", "o-ann")])
    options = BackfillOptions(lookup_field="org_id", source=source, normalize_email_local_part=True)

    tally = await run_backfill(config, options)

    assert [r.outcome for r in tally.results] == [RowOutcome.SET]
    assert org_ids(fake) == {ann: "o-ann"}
