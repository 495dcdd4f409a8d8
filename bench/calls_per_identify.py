"""Pardot calls per identify, for each strategy, cold (first sight), warm (identity map
hit, with a write to send: ``skip_unchanged`` off) and repeated identically (the memory
of writes: issue 15, no call for nothing) — measured against fakepardot through the
live server, printed as the Markdown table that README.md carries.

Run: ``make bench-calls`` (or ``.venv/bin/python bench/calls_per_identify.py``).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the packages first, then tests/support

from fakepardot import FakePardot  # noqa: E402
from server.logging import configure_logging  # noqa: E402
from support.service import close_service, config_for, identify, open_service  # noqa: E402

#: (strategy, settings key, traits, what Segment's documented design costs per identify)
CASES = [
    ("EmailV3", "v3", {"email": "tom@example.com"}, "2 (read + create/update)"),
    ("IdFidV4", "fid", {"email": "bill@segment.com"}, "1"),
    (
        "LookupFieldV4",
        "org",
        {"email": "bill@segment.com", "org_id": "1sf324fd53"},
        "2 (read + write)",
    ),
    ("UserIdLookupV4", "user", {"email": "bill@segment.com"}, "2 (read + write)"),
    ("CreateV4", "create", {"email": "new@example.com"}, "—"),
    # API v5 (the "v5" connection: the v4 business unit through v5's JSON dialect).
    ("EmailV5", "v5", {"email": "kevin@example.com"}, "1 (upsertLatestByEmail)"),
    ("IdFidV4 on v5 (pardot.id)", "v5id", {"email": "bill@segment.com"}, "1"),
    (
        "LookupFieldV4 on v5",
        "v5org",
        {"email": "bill@segment.com", "org_id": "1sf324fd53"},
        "2 (read + write)",
    ),
]

SETTINGS = {
    "v3": {"connection": "v3"},
    "fid": {"pardot_fid": "00339000033ZUR6"},
    "org": {"lookup_field": "org_id"},
    "user": {"lookup_field": "org_id", "use_user_id_as_lookup_value": True, "user_id": "u-1"},
    "create": {"create_when_unmatched": True},
    "v5": {"connection": "v5"},
    "v5id": {"connection": "v5", "pardot_id": "{seeded}"},
    "v5org": {"connection": "v5", "lookup_field": "org_id"},
}

#: v5 paths have no ``do/<operation>``: the method and the path's shape name it.
V5_OPERATIONS = {"GET": "read", "POST": "create", "PATCH": "update", "DELETE": "delete"}


def operation(method: str, path: str) -> str:
    """``upsert``, ``read``, ``upsertLatestByEmail``, ``query``…: what one call did."""
    if "/do/" in path:
        return path.split("/do/")[1].split("/")[0]
    if path == "/api/v5/objects/prospects":
        return "query" if method == "GET" else "create"
    return V5_OPERATIONS.get(method, method.lower())


def described(response) -> str:
    """ "2 (read + create)": the count and the Pardot operations a response cost."""
    ops = [operation(c.method, c.path) for c in response.pardot_calls]
    return f"{len(ops)} ({' + '.join(ops)})" if ops else "0"


async def measure() -> list[tuple[str, str, str, str, str]]:
    rows = []
    with FakePardot() as fake, tempfile.TemporaryDirectory() as state:
        for name, how, traits, segment in CASES:
            fake.state.reset()
            seeded = fake.state.add_prospect(
                "v4", email="bill@old.example", crm_contact_fid="00339000033ZUR6"
            )
            service = await open_service(config_for(fake, Path(state) / name))
            try:
                settings = {
                    key: value.format(seeded=seeded["id"]) if isinstance(value, str) else value
                    for key, value in SETTINGS[how].items()
                }
                request = identify(traits, **settings)
                cold = await service.stub.Identify(request)
                repeat = await service.stub.Identify(request)
                warm = await service.stub.Identify(
                    identify(traits, **settings, skip_unchanged=False)
                )
                rows.append((name, described(cold), described(warm), described(repeat), segment))
            finally:
                await close_service(service)
    return rows


def main() -> None:
    configure_logging("warning")
    rows = asyncio.run(measure())
    print(
        "| strategy | cold: first identify | warm: repeat, skip_unchanged off (identity map "
        "hit) | repeat, identical (skip_unchanged on) | Segment's design |"
    )
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
