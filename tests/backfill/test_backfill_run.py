"""The backfill over real HTTP against fakepardot, through the service's own
connections: what it writes, what it never writes, what it remembers, and how a
stopped run resumes without redoing finished rows."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from clients.state.local import IDENTITY_FILE
from fakepardot import FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from server.backfill.journal import JOURNAL_FILE
from server.backfill.model import RowOutcome, RowResult, StopReason, Tally
from server.backfill.run import (
    MAX_FAILURES_IN_A_ROW,
    BackfillOptions,
    BackfillUsageError,
    run_backfill,
)
from server.config import ServiceConfig
from strategies.core.model import field_namespace
from support.service import close_service, identify, open_service

from .helpers import V4, org_ids, prospect_reads, prospect_writes, write_csv


async def backfill(config: ServiceConfig, source: Path, **options: object) -> Tally:
    return await run_backfill(
        config,
        BackfillOptions(lookup_field="org_id", source=source, **options),  # type: ignore[arg-type]
    )


def seeded_map(state_dir: Path) -> dict[str, int]:
    """The identity map's entries for org_id on the default connection."""
    with closing(sqlite3.connect(state_dir / IDENTITY_FILE)) as db:
        rows = db.execute(
            "SELECT key, prospect_id FROM identity WHERE connection='default' AND namespace=?",
            (field_namespace("org_id"),),
        ).fetchall()
    return dict(rows)


def outcomes(tally: Tally) -> dict[str, RowOutcome]:
    return {r.email: r.outcome for r in tally.results}


async def test_sets_where_empty_and_keeps_what_is_there(
    fake: FakePardot, config: ServiceConfig, state_dir: Path, tmp_path: Path
) -> None:
    bill = fake.state.add_prospect(V4, email="bill@segment.com")["id"]
    ann = fake.state.add_prospect(V4, email="ann@example.com", org_id="o-ann")["id"]
    carol = fake.state.add_prospect(V4, email="carol@example.com", org_id="o-other")["id"]
    source = write_csv(
        tmp_path / "users.csv",
        [
            ("bill@segment.com", "1sf324fd53"),
            ("ann@example.com", "o-ann"),
            ("carol@example.com", "o-carol"),
            ("nobody@example.com", "o-none"),
        ],
    )
    tally = await backfill(config, source)

    assert outcomes(tally) == {
        "bill@segment.com": RowOutcome.SET,
        "ann@example.com": RowOutcome.ALREADY_SET,
        "carol@example.com": RowOutcome.CONFLICT,
        "nobody@example.com": RowOutcome.NOT_FOUND,
    }
    assert org_ids(fake) == {bill: "1sf324fd53", ann: "o-ann", carol: "o-other"}
    [conflict] = [r for r in tally.results if r.outcome is RowOutcome.CONFLICT]
    assert (conflict.line, conflict.conflicts[0].prospect_id, conflict.conflicts[0].existing) == (
        4,
        carol,
        "o-other",
    )
    assert len(fake.state.prospects(V4)) == 3  # nothing created
    assert [w.path for w in prospect_writes(fake)] == [
        f"/api/prospect/version/4/do/update/id/{bill}"
    ]
    assert (tally.matched, tally.reads, tally.writes, tally.stopped) == (3, 4, 1, None)
    assert tally.needs_attention  # the conflict
    assert seeded_map(state_dir) == {"1sf324fd53": bill, "o-ann": ann}


async def test_two_prospects_sharing_an_email_each_get_their_user(
    fake: FakePardot, config: ServiceConfig, state_dir: Path, tmp_path: Path
) -> None:
    blue = fake.state.add_prospect(V4, email="team@example.com", org_id="o-blue")["id"]
    empty = fake.state.add_prospect(V4, email="team@example.com")["id"]
    source = write_csv(
        tmp_path / "users.csv",
        [
            ("team@example.com", "o-blue"),
            ("team@example.com", "o-green"),
            ("team@example.com", "o-red"),
        ],
    )
    tally = await backfill(config, source)

    by_line = {r.line: r for r in tally.results}
    assert (by_line[2].outcome, by_line[2].prospect_id) == (RowOutcome.ALREADY_SET, blue)
    assert (by_line[3].outcome, by_line[3].prospect_id) == (RowOutcome.SET, empty)
    # No empty prospect is left for the third user: reported, nothing overwritten.
    assert by_line[4].outcome is RowOutcome.CONFLICT
    assert {c.prospect_id for c in by_line[4].conflicts} == {blue, empty}
    assert org_ids(fake) == {blue: "o-blue", empty: "o-green"}
    assert seeded_map(state_dir) == {"o-blue": blue, "o-green": empty}


async def test_a_seeded_value_costs_the_server_one_call(
    fake: FakePardot, config: ServiceConfig, tmp_path: Path
) -> None:
    bill = fake.state.add_prospect(V4, email="bill@segment.com")["id"]
    await backfill(config, write_csv(tmp_path / "u.csv", [("bill@segment.com", "1sf324fd53")]))
    fake.state.calls.clear()

    service = await open_service(config)  # the same state_dir: the same identity map
    try:
        traits = {"email": "bill@segment.com", "org_id": "1sf324fd53", "first_name": "Bill"}
        response = await service.stub.Identify(identify(traits, lookup_field="org_id"))
    finally:
        await close_service(service)
    assert response.strategy == "LookupFieldV4"
    assert (response.outcome, response.prospect_id) == (pb.OUTCOME_UPDATED, str(bill))
    assert [c.path for c in response.pardot_calls] == [
        f"/api/prospect/version/4/do/update/id/{bill}"
    ]
    assert len(fake.state.prospects(V4)) == 1


async def test_the_user_id_column_seeds_what_user_id_lookup_finds(
    fake: FakePardot, config: ServiceConfig, tmp_path: Path
) -> None:
    ann = fake.state.add_prospect(V4, email="ann@example.com")["id"]
    source = write_csv(tmp_path / "u.csv", [("ann@example.com", "user-17")], header="email,user_id")
    tally = await backfill(config, source)
    assert outcomes(tally) == {"ann@example.com": RowOutcome.SET}
    fake.state.calls.clear()

    service = await open_service(config)
    try:
        request = identify(
            {"email": "ann@example.com"},
            user_id="user-17",
            lookup_field="org_id",
            use_user_id_as_lookup_value=True,
        )
        response = await service.stub.Identify(request)
    finally:
        await close_service(service)
    assert response.strategy == "UserIdLookupV4"
    assert response.prospect_id == str(ann)
    assert len(response.pardot_calls) == 1


async def test_a_dry_run_reads_plans_and_keeps_nothing(
    fake: FakePardot, config: ServiceConfig, state_dir: Path, tmp_path: Path
) -> None:
    fake.state.add_prospect(V4, email="a@example.com")
    fake.state.add_prospect(V4, email="b@example.com", org_id="o-b")
    before = org_ids(fake)
    source = write_csv(tmp_path / "u.csv", [("a@example.com", "o-a"), ("b@example.com", "o-b")])
    tally = await backfill(config, source, dry_run=True)

    assert outcomes(tally) == {
        "a@example.com": RowOutcome.SET,
        "b@example.com": RowOutcome.ALREADY_SET,
    }
    assert (tally.reads, tally.writes) == (2, 1)  # the write only planned
    assert prospect_writes(fake) == []
    assert org_ids(fake) == before
    assert seeded_map(state_dir) == {}
    assert not (state_dir / JOURNAL_FILE).exists()
    # Nothing was journaled: the real run does every row.
    fake.state.calls.clear()
    real = await backfill(config, source)
    assert real.earlier == 0 and sorted(prospect_reads(fake)) == ["a@example.com", "b@example.com"]


async def test_a_failed_row_is_retried_next_run_and_finished_rows_are_not(
    fake: FakePardot, config: ServiceConfig, tmp_path: Path
) -> None:
    for n in range(4):
        fake.state.add_prospect(V4, email=f"u{n}@example.com")
    rows = [(f"u{n}@example.com", f"o-{n}") for n in range(4)]
    source = write_csv(tmp_path / "u.csv", rows)
    # u2's read fails on every attempt (the first try and the connection's 3 retries).
    fake.state.inject("http_500", times=4, path_contains="u2@example.com")
    first = await backfill(config, source)

    assert outcomes(first)["u2@example.com"] is RowOutcome.FAILED
    [failed] = [r for r in first.results if r.outcome is RowOutcome.FAILED]
    assert failed.line == 4
    assert "HTTP 500" in failed.reason, failed.reason
    assert first.stopped is None and first.needs_attention
    assert org_ids(fake)[min(org_ids(fake))] == "o-0"

    fake.state.calls.clear()
    second = await backfill(config, source)
    assert prospect_reads(fake) == ["u2@example.com"]  # only the failed row again
    assert second.earlier == 3
    assert outcomes(second)["u2@example.com"] is RowOutcome.SET
    assert sorted(v for v in org_ids(fake).values() if v) == ["o-0", "o-1", "o-2", "o-3"]
    assert not second.needs_attention


async def test_an_interrupted_run_resumes_where_it_stopped(
    fake: FakePardot, config: ServiceConfig, tmp_path: Path
) -> None:
    for n in range(6):
        fake.state.add_prospect(V4, email=f"u{n}@example.com")
    source = write_csv(tmp_path / "u.csv", [(f"u{n}@example.com", f"o-{n}") for n in range(6)])
    stop = asyncio.Event()
    seen: list[RowResult] = []

    def after_two(result: RowResult) -> None:
        seen.append(result)
        if len(seen) == 2:
            stop.set()  # as Ctrl-C does

    first = await run_backfill(
        config,
        BackfillOptions(lookup_field="org_id", source=source, concurrency=1),
        stop=stop,
        on_result=after_two,
    )
    assert first.stopped is StopReason.INTERRUPTED
    assert (len(first.results), first.not_reached) == (2, 4)
    done_first = set(prospect_reads(fake))
    assert done_first == {"u0@example.com", "u1@example.com"}

    fake.state.calls.clear()
    second = await backfill(config, source)
    assert second.stopped is None and second.earlier == 2
    assert set(prospect_reads(fake)) == {f"u{n}@example.com" for n in range(2, 6)}
    assert len(second.results) == 6 and second.not_reached == 0


async def test_the_daily_limit_stops_cleanly_and_tomorrow_resumes(
    fake: FakePardot, config: ServiceConfig, tmp_path: Path
) -> None:
    for n in range(5):
        fake.state.add_prospect(V4, email=f"u{n}@example.com")
    source = write_csv(tmp_path / "u.csv", [(f"u{n}@example.com", f"o-{n}") for n in range(5)])
    fake.state.daily_limit = 4  # two rows (a read and a write each), then err 122
    first = await backfill(config, source, concurrency=1)

    assert first.stopped is StopReason.DAILY_LIMIT
    assert "122" in first.stop_message
    assert [r.outcome for r in first.results] == [RowOutcome.SET, RowOutcome.SET]
    assert first.not_reached == 3
    assert not [r for r in first.results if r.outcome is RowOutcome.FAILED]
    refused = [c for c in fake.state.calls if c.err_code == 122]
    assert len(refused) == 1  # never retried, no further row tried

    fake.state.daily_limit = None  # the account's next day
    fake.state.calls.clear()
    second = await backfill(config, source)
    assert second.stopped is None and second.earlier == 2
    assert set(prospect_reads(fake)) == {f"u{n}@example.com" for n in range(2, 5)}
    assert sorted(v for v in org_ids(fake).values() if v) == [f"o-{n}" for n in range(5)]


async def test_restart_forgets_the_journal(
    fake: FakePardot, config: ServiceConfig, tmp_path: Path
) -> None:
    fake.state.add_prospect(V4, email="a@example.com")
    source = write_csv(tmp_path / "u.csv", [("a@example.com", "o-a")])
    await backfill(config, source)
    fake.state.calls.clear()
    again = await backfill(config, source, restart=True)
    assert again.earlier == 0 and prospect_reads(fake) == ["a@example.com"]
    assert outcomes(again) == {"a@example.com": RowOutcome.ALREADY_SET}


async def test_an_edited_file_is_a_new_job(
    fake: FakePardot, config: ServiceConfig, tmp_path: Path
) -> None:
    fake.state.add_prospect(V4, email="a@example.com")
    source = write_csv(tmp_path / "u.csv", [("a@example.com", "o-a")])
    await backfill(config, source)
    write_csv(source, [("a@example.com", "o-a"), ("b@example.com", "o-b")])
    fake.state.calls.clear()
    edited = await backfill(config, source)
    assert edited.earlier == 0
    assert sorted(prospect_reads(fake)) == ["a@example.com", "b@example.com"]


async def test_rows_run_concurrently_within_the_connection_limit(
    fake: FakePardot, config: ServiceConfig, tmp_path: Path
) -> None:
    for n in range(12):
        fake.state.add_prospect(V4, email=f"u{n}@example.com")
    source = write_csv(tmp_path / "u.csv", [(f"u{n}@example.com", f"o-{n}") for n in range(12)])
    fake.state.latency_s = 0.02  # calls overlap; a sixth in flight would be err 66
    tally = await backfill(config, source)
    assert [c for c in fake.state.calls if c.err_code == 66] == []
    assert tally.counts[RowOutcome.SET] == 12


async def test_a_field_the_account_lacks_stops_the_run(
    fake: FakePardot, config: ServiceConfig, tmp_path: Path
) -> None:
    for n in range(3):
        fake.state.add_prospect(V4, email=f"u{n}@example.com")
    source = write_csv(tmp_path / "u.csv", [(f"u{n}@example.com", f"t-{n}") for n in range(3)])
    tally = await run_backfill(
        config, BackfillOptions(lookup_field="tenant_id", source=source, concurrency=1)
    )
    assert tally.stopped is StopReason.CONNECTION
    assert "create the custom field 'tenant_id'" in tally.stop_message
    assert tally.results == [] and tally.not_reached == 3


async def test_pardot_down_for_many_rows_stops_instead_of_failing_them_all(
    fake: FakePardot, config: ServiceConfig, tmp_path: Path
) -> None:
    rows = [(f"u{n}@example.com", f"o-{n}") for n in range(MAX_FAILURES_IN_A_ROW + 5)]
    source = write_csv(tmp_path / "u.csv", rows)
    fake.state.inject("http_500", times=1000, path_contains="/do/read/")
    tally = await backfill(config, source, concurrency=1)
    assert tally.stopped is StopReason.CONNECTION
    assert "Pardot looks unavailable" in tally.stop_message
    assert tally.counts[RowOutcome.FAILED] == MAX_FAILURES_IN_A_ROW
    assert tally.not_reached == 5


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lookup_field": "org id"}, "--lookup-field is not a Pardot field id"),
        ({"lookup_field": "email"}, "--lookup-field 'email' is a standard Pardot field"),
        ({"connection": "nope"}, "--connection: settings.connection names 'nope'"),
        ({"concurrency": 9}, "--concurrency must be from 1 to 5"),
    ],
)
async def test_bad_options_fail_before_any_call(
    fake: FakePardot, config: ServiceConfig, tmp_path: Path, options: dict, message: str
) -> None:
    source = write_csv(tmp_path / "u.csv", [("a@example.com", "o-a")])
    values = {"lookup_field": "org_id", "source": source, **options}
    with pytest.raises(BackfillUsageError) as caught:
        await run_backfill(config, BackfillOptions(**values))
    assert message in str(caught.value)
    assert [c for c in fake.state.calls if c.path.startswith("/api/")] == []
