"""``bench.figures.cold_figures``: the cold lookup burst's figures from what the load
generator saw and what the fake recorded — who each Pardot call was spent on, and how
much of it went to calls that then failed (issue 12). Plain data, no processes."""

from __future__ import annotations

import json
from typing import Any

from bench.figures import cold_figures

TAG = "r1abc-cold"


def email(n: int) -> str:
    return f"bench-{TAG}-{n}@example.com"


def read(n: int) -> dict[str, Any]:
    return {"path": f"/api/prospect/version/4/do/read/email/{email(n)}", "form": {}, "err_code": 0}


def batch_create(*people: int) -> dict[str, Any]:
    entries = [{"email": email(n), "org_id": f"{TAG}-org-{n}"} for n in people]
    return {
        "path": "/api/prospect/version/4/do/batchCreate",
        "form": {"prospects": json.dumps({"prospects": entries})},
        "err_code": 0,
    }


def loadgen(outcomes: list[str]) -> dict[str, Any]:
    codes: dict[str, int] = {}
    for status in outcomes:
        codes[status] = codes.get(status, 0) + 1
    return {
        "count": len(outcomes),
        "codes": codes,
        "outcomes": outcomes,
        "duration_s": 1.0,
        "p50_ms": 1.0,
        "p99_ms": 2.0,
    }


def test_calls_are_charged_to_the_people_they_name_batches_in_equal_parts() -> None:
    outcomes = ["OK", "OK", "DEADLINE_EXCEEDED", "OK", "UNAVAILABLE"]
    calls = [
        {"path": "/services/oauth2/token", "form": {}, "err_code": 0},  # nobody's
        read(0),
        read(1),
        read(2),  # spent on a call that failed
        read(3),
        batch_create(0, 1, 2, 3),  # a quarter of it for person 2
        {"path": "/api/prospect/version/4/do/read/email/someone@else.com", "form": {}},
    ]

    figures = cold_figures(loadgen(outcomes), calls, TAG)

    assert figures["ok"] == 3
    assert figures["failed_codes"] == {"DEADLINE_EXCEEDED": 1, "UNAVAILABLE": 1}
    assert figures["pardot_calls"] == 6  # the token grant is not an API call
    assert figures["wasted_calls"] == 1.25
    assert figures["wasted_share"] == 1.25 / 6
    assert figures["unattributed_calls"] == 1
    assert figures["err66"] == 0


def test_a_refused_call_that_cost_nothing_wastes_nothing() -> None:
    figures = cold_figures(loadgen(["OK", "UNAVAILABLE"]), [read(0), batch_create(0)], TAG)

    assert figures["wasted_calls"] == 0 and figures["wasted_share"] == 0
    assert figures["pardot_calls"] == 2
