"""Contract: batch endpoints (PARDOT_API.md, "Batch")."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

from fakepardot import FakePardot

if TYPE_CHECKING:
    from tests.fakepardot.conftest import Pardot


def _prospects(value: Any) -> str:
    return json.dumps({"prospects": value})


def test_v4_batch_create_success_body_is_exact(v4: Pardot, fake: FakePardot) -> None:
    entries = [{"email": "a@example.com", "first_name": "A"}, {"email": "b@example.com"}]
    response = v4.call("batchCreate", prospects=_prospects(entries))
    assert response.status_code == 200
    assert response.json() == {"@attributes": {"stat": "ok", "version": 1}, "errors": {}}
    assert [p["email"] for p in fake.state.prospects("v4")] == ["a@example.com", "b@example.com"]


def test_batch_errors_are_keyed_by_index_and_other_entries_apply(
    v4: Pardot, fake: FakePardot
) -> None:
    entries = [{"email": "ok@example.com"}, {"email": "broken"}, {"email": "ok2@example.com"}]
    document = v4.call("batchCreate", prospects=_prospects(entries)).json()
    assert document == {
        "@attributes": {"stat": "ok", "version": 1},
        "errors": {"1": "Invalid prospect email address"},
    }
    assert len(fake.state.prospects("v4")) == 2


def test_v4_batch_update_needs_id_or_fid(v4: Pardot, fake: FakePardot) -> None:
    by_id = fake.state.add_prospect("v4", email="i@example.com")
    fake.state.add_prospect("v4", email="f@example.com", crm_lead_fid="00Q5e00000AbCdEFGH")
    entries = [
        {"id": by_id["id"], "city": "Turku"},
        {"fid": "00Q5e00000AbCdEFGH", "city": "Espoo"},
        {"email": "i@example.com", "city": "Nope"},
        {"id": 1, "city": "Ghost"},
    ]
    document = v4.call("batchUpdate", prospects=_prospects(entries)).json()
    assert document["errors"] == {"2": "Invalid prospect ID", "3": "Invalid prospect ID"}
    assert sorted(p["city"] for p in fake.state.prospects("v4")) == ["Espoo", "Turku"]


def test_v4_batch_upsert_email_alone_creates(v4: Pardot, fake: FakePardot) -> None:
    existing = fake.state.add_prospect("v4", email="u@example.com")
    entries = [{"email": "u@example.com"}, {"id": existing["id"], "company": "Acme"}]
    assert v4.call("batchUpsert", prospects=_prospects(entries)).json()["errors"] == {}
    stored = fake.state.prospects("v4")
    assert len(stored) == 2
    assert stored[0]["company"] == "Acme"


def test_v3_batch_is_keyed_by_id_or_email(v3: Pardot, fake: FakePardot) -> None:
    existing = fake.state.add_prospect("v3", email="old@example.com")
    keyed = {
        str(existing["id"]): {"first_name": "ById"},
        "new@example.com": {"first_name": "ByEmail"},
    }
    assert v3.call("batchUpsert", prospects=_prospects(keyed)).json()["errors"] == {}
    names = {p["email"]: p["first_name"] for p in fake.state.prospects("v3")}
    assert names == {"old@example.com": "ById", "new@example.com": "ByEmail"}


def test_v3_batch_create_keeps_email_unique(v3: Pardot, fake: FakePardot) -> None:
    fake.state.add_prospect("v3", email="taken@example.com")
    keyed = {"taken@example.com": {}, "free@example.com": {}}
    document = v3.call("batchCreate", prospects=_prospects(keyed)).json()
    assert document["errors"] == {"0": "A prospect with the specified email address already exists"}


def test_more_than_50_prospects_is_err_70(v4: Pardot, fake: FakePardot) -> None:
    entries = [{"email": f"p{i}@example.com"} for i in range(51)]
    text = v4.fails(70, "batchCreate", prospects=_prospects(entries), http_status=400)
    assert text == "Batch processing is limited to 50 prospects at once."
    assert fake.state.prospects("v4") == []
    fifty = [{"email": f"p{i}@example.com"} for i in range(50)]
    assert v4.call("batchCreate", prospects=_prospects(fifty)).json()["errors"] == {}


def test_bad_payload_is_err_71(v4: Pardot, v3: Pardot) -> None:
    assert v4.fails(71, "batchCreate", prospects="{not json", http_status=400) == (
        "Input needs to be valid JSON or XML"
    )
    v4.fails(71, "batchCreate", prospects=json.dumps({"other": []}), http_status=400)
    v4.fails(71, "batchCreate", prospects=_prospects({"a@example.com": {}}), http_status=400)
    v3.fails(71, "batchCreate", prospects=_prospects([{"email": "a@example.com"}]), http_status=400)


def test_missing_prospects_parameter_is_err_13(v4: Pardot) -> None:
    v4.fails(13, "batchCreate")


def test_batch_accepts_xml_and_answers_xml(v4: Pardot, fake: FakePardot) -> None:
    payload = (
        "<prospects><prospect><email>x1@example.com</email></prospect>"
        "<prospect><email>bad</email></prospect></prospects>"
    )
    response = v4.call("batchCreate", prospects=payload, fmt="xml")
    rsp = ET.fromstring(response.content)
    assert rsp.attrib == {"stat": "ok", "version": "1.0"}
    errors = rsp.findall("errors/error")
    assert [(e.attrib["identifier"], e.text) for e in errors] == [
        ("1", "Invalid prospect email address")
    ]
    assert [p["email"] for p in fake.state.prospects("v4")] == ["x1@example.com"]
