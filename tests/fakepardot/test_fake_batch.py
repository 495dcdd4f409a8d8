"""Contract: batch endpoints (PARDOT_API.md, "Batch").

What each answer rests on is said beside it. "RECORDED" is PARDOT_API.md's word for
facts taken from recordings of real Pardot traffic; the recordings cited here are
grouparoo/grouparoo ``plugins/@grouparoo/pardot/__tests__/fixtures/export/
export-records.js`` (commit dfaac0669561fd64482a36fec3572887a254153a: v4 batchUpsert
against a Pardot demo account, May 2021, with Pardot's headers) and the raw transcript
in pardot/api-docs issue #232 (a batchUpdate with a raw JSON body, 2020).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from fakepardot import FakePardot

if TYPE_CHECKING:
    from tests.fakepardot.conftest import Pardot

OK = {"@attributes": {"stat": "ok", "version": 1}, "errors": {}}
INVALID_EMAIL = "Invalid prospect email address"


def _prospects(value: Any) -> str:
    return json.dumps({"prospects": value})


def _failed(errors: dict[str, str]) -> dict[str, Any]:
    """A partial batch's answer: stat fail, NO err_code (RECORDED)."""
    return {"@attributes": {"stat": "fail", "version": 1}, "errors": errors}


# --- a clean batch --------------------------------------------------------------------


def test_v4_batch_create_success_body_is_exact_and_201(v4: Pardot, fake: FakePardot) -> None:
    """PARDOT_API.md, Batch: RECORDED — a clean batch that created answers HTTP 201 with
    ``{"@attributes": {"stat": "ok", "version": 1}, "errors": {}}`` (grouparoo's
    fixtures: every batchUpsert whose entries carry an email alone answers 201)."""
    entries = [{"email": "a@example.com", "first_name": "A"}, {"email": "b@example.com"}]
    response = v4.call("batchCreate", prospects=_prospects(entries))
    assert response.status_code == 201
    assert response.json() == OK
    assert [p["email"] for p in fake.state.prospects("v4")] == ["a@example.com", "b@example.com"]


def test_a_clean_batch_that_creates_nothing_answers_200(v4: Pardot, fake: FakePardot) -> None:
    """RECORDED (grouparoo's fixtures): a batchUpsert whose entries name an existing
    ``id`` answers 200 with the same body."""
    existing = fake.state.add_prospect("v4", email="e@example.com")
    entries = [{"id": existing["id"], "email": "e@example.com", "first_name": "John"}]
    for operation in ("batchUpsert", "batchUpdate"):
        response = v4.call(operation, prospects=_prospects(entries))
        assert (response.status_code, response.json()) == (200, OK)


def test_a_batch_upsert_with_one_creating_entry_answers_201(v4: Pardot, fake: FakePardot) -> None:
    """RECORDED: 201 "when it created prospects (… batchUpsert entries that created)"."""
    existing = fake.state.add_prospect("v4", email="u@example.com")
    entries = [{"email": "new@example.com"}, {"id": existing["id"], "company": "Acme"}]
    response = v4.call("batchUpsert", prospects=_prospects(entries))
    assert (response.status_code, response.json()) == (201, OK)
    stored = fake.state.prospects("v4")
    assert len(stored) == 2
    assert stored[0]["company"] == "Acme"


# --- a batch where some entries failed: a partial success ------------------------------


def test_failed_entries_make_stat_fail_without_err_code_and_the_rest_apply(
    v4: Pardot, fake: FakePardot
) -> None:
    """PARDOT_API.md, Batch: RECORDED — ``stat: "fail"`` with no err_code, HTTP 200, the
    failed entries under ``errors`` by index; every other entry processed (grouparoo's
    fixtures: a batchUpsert of two whose second email is bad answers exactly this, with
    ``errors: {"1": "Invalid prospect email address"}``)."""
    entries = [{"email": "ok@example.com"}, {"email": "broken"}, {"email": "ok2@example.com"}]
    response = v4.call("batchCreate", prospects=_prospects(entries))
    assert response.status_code == 200  # RECORDED: 200, though two entries created
    assert response.json() == _failed({"1": INVALID_EMAIL})
    assert sorted(p["email"] for p in fake.state.prospects("v4")) == [
        "ok2@example.com",
        "ok@example.com",
    ]
    assert fake.state.calls[-1].err_code == 0  # no err_code: nothing for the call log


def test_a_failed_first_entry_is_keyed_0_in_a_json_object(v4: Pardot, fake: FakePardot) -> None:
    """RECORDED (grouparoo's fixtures): a batchUpsert of one entry with a bad email by
    id answers 200 ``{"@attributes": {"stat": "fail", "version": 1}, "errors": {"0":
    "Invalid prospect email address"}}`` — an object, even for index 0; an update by id
    whose new email is bad fails like a create's."""
    existing = fake.state.add_prospect("v4", email="maria@example.com")
    entries = [{"email": "notanemail", "id": existing["id"], "first_name": "Maria"}]
    response = v4.call("batchUpsert", prospects=_prospects(entries))
    assert response.status_code == 200
    assert response.text.startswith('{"@attributes":{"stat":"fail","version":1},"errors":{"0"')
    assert response.json() == _failed({"0": INVALID_EMAIL})
    assert fake.state.get_prospect("v4", existing["id"])["email"] == "maria@example.com"  # type: ignore[index]


def test_a_null_in_a_batch_entry_leaves_the_value_and_empty_clears_it(
    v4: Pardot, fake: FakePardot
) -> None:
    """Evidence, not RECORDED: grouparoo/grouparoo#1391 (its Pardot destination's v4
    batchUpsert; the review of ``exportProfiles.ts``): a JSON null "just leaves the old
    value and does nothing"; the destination sends an empty string to clear."""
    kept = fake.state.add_prospect("v4", email="k@example.com", phone="555-1", company="Acme")
    entries = [{"id": kept["id"], "phone": None, "company": ""}]
    response = v4.call("batchUpdate", prospects=_prospects(entries))
    assert (response.status_code, response.json()) == (200, OK)
    (stored,) = fake.state.prospects("v4")
    assert stored["phone"] == "555-1"
    assert not stored["company"]


def test_v4_batch_update_needs_id_or_fid(v4: Pardot, fake: FakePardot) -> None:
    """Entry errors are the single call's texts ("Invalid prospect ID", err 3, for an
    entry without id/fid or with an id nobody has: PARDOT_API.md, v4 batchUpdate needs
    id or fid)."""
    by_id = fake.state.add_prospect("v4", email="i@example.com")
    fake.state.add_prospect("v4", email="f@example.com", crm_lead_fid="00Q5e00000AbCdEFGH")
    entries = [
        {"id": by_id["id"], "city": "Turku"},
        {"fid": "00Q5e00000AbCdEFGH", "city": "Espoo"},
        {"email": "i@example.com", "city": "Nope"},
        {"id": 1, "city": "Ghost"},
    ]
    response = v4.call("batchUpdate", prospects=_prospects(entries))
    assert response.status_code == 200
    assert response.json() == _failed({"2": "Invalid prospect ID", "3": "Invalid prospect ID"})
    assert sorted(p["city"] for p in fake.state.prospects("v4")) == ["Espoo", "Turku"]


def test_a_deleted_prospect_fails_only_its_entry(v4: Pardot, fake: FakePardot) -> None:
    kept = fake.state.add_prospect("v4", email="kept@example.com")
    gone = fake.state.add_prospect("v4", email="gone@example.com")
    fake.state.delete_prospect("v4", gone["id"])
    entries = [{"id": gone["id"], "city": "X"}, {"id": kept["id"], "city": "Y"}]
    document = v4.call("batchUpdate", prospects=_prospects(entries)).json()
    assert document == _failed({"0": "Invalid prospect ID"})
    assert fake.state.get_prospect("v4", kept["id"])["city"] == "Y"  # type: ignore[index]


def test_partial_batch_in_xml(v4: Pardot, fake: FakePardot) -> None:
    """PARDOT_API.md, Batch: RECORDED — XML ``<rsp stat="fail" version="1.0"><errors>
    <prospect identifier="0">Invalid prospect email address</prospect></errors></rsp>``,
    and no ``<err>`` (no err_code)."""
    payload = (
        "<prospects><prospect><email>x1@example.com</email></prospect>"
        "<prospect><email>bad</email></prospect></prospects>"
    )
    response = v4.call("batchCreate", prospects=payload, fmt="xml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    rsp = ET.fromstring(response.content)
    assert rsp.attrib == {"stat": "fail", "version": "1.0"}
    assert rsp.find("err") is None
    errors = rsp.findall("errors/prospect")
    assert [(e.attrib, e.text) for e in errors] == [({"identifier": "1"}, INVALID_EMAIL)]
    assert [p["email"] for p in fake.state.prospects("v4")] == ["x1@example.com"]


def test_clean_batch_in_xml(v4: Pardot) -> None:
    """stat ok and 201 as in JSON (RECORDED for JSON); the clean XML body, an empty
    ``<errors/>``, is UNCONFIRMED (no recording shows one)."""
    payload = "<prospects><prospect><email>x2@example.com</email></prospect></prospects>"
    response = v4.call("batchCreate", prospects=payload, fmt="xml")
    assert response.status_code == 201
    rsp = ET.fromstring(response.content)
    assert rsp.attrib == {"stat": "ok", "version": "1.0"}
    assert [child.tag for child in rsp] == ["errors"] and list(rsp[0]) == []


# --- v3 -------------------------------------------------------------------------------


def test_v3_batch_is_keyed_by_id_or_email(v3: Pardot, fake: FakePardot) -> None:
    existing = fake.state.add_prospect("v3", email="old@example.com")
    keyed = {
        str(existing["id"]): {"first_name": "ById"},
        "new@example.com": {"first_name": "ByEmail"},
    }
    response = v3.call("batchUpsert", prospects=_prospects(keyed))
    assert (response.status_code, response.json()) == (201, OK)
    names = {p["email"]: p["first_name"] for p in fake.state.prospects("v3")}
    assert names == {"old@example.com": "ById", "new@example.com": "ByEmail"}


def test_v3_xml_entries_are_keyed_by_their_identifier_attribute(
    v3: Pardot, fake: FakePardot
) -> None:
    """PARDOT_API.md, Batch: v3 XML batches key an entry by an attribute,
    ``<prospect identifier="a@b.com">…</prospect>``."""
    existing = fake.state.add_prospect("v3", email="xml@example.com")
    payload = (
        f'<prospects><prospect identifier="{existing["id"]}"><company>ById</company></prospect>'
        '<prospect identifier="xml2@example.com"><company>ByEmail</company></prospect>'
        "</prospects>"
    )
    assert v3.call("batchUpsert", prospects=payload, fmt="xml").status_code == 201
    companies = {p["email"]: p["company"] for p in fake.state.prospects("v3")}
    assert companies == {"xml@example.com": "ById", "xml2@example.com": "ByEmail"}


V3_TAKEN = {"taken@example.com": {}, "free@example.com": {}}
EXISTS = "A prospect with the specified email address already exists"


def test_v3_error_keys_are_indexes_by_default(v3: Pardot, fake: FakePardot) -> None:
    """UNCONFIRMED (PARDOT_API.md, Batch: whether v3 error keys are indexes or
    identifiers): the default is the index, as v4 does (RECORDED for v4)."""
    fake.state.add_prospect("v3", email="taken@example.com")
    assert fake.state.v3_batch_error_keys == "index"
    response = v3.call("batchCreate", prospects=_prospects(V3_TAKEN))
    assert (response.status_code, response.json()) == (200, _failed({"0": EXISTS}))
    assert sorted(p["email"] for p in fake.state.prospects("v3")) == [
        "free@example.com",
        "taken@example.com",
    ]


def test_v3_error_keys_can_be_identifiers(v3: Pardot, fake: FakePardot) -> None:
    """The other side of the UNCONFIRMED switch: the key the entry was sent under."""
    fake.state.add_prospect("v3", email="taken@example.com")
    fake.state.v3_batch_error_keys = "identifier"
    response = v3.call("batchCreate", prospects=_prospects(V3_TAKEN))
    assert response.json() == _failed({"taken@example.com": EXISTS})
    payload = '<prospects><prospect identifier="taken@example.com"></prospect></prospects>'
    rsp = ET.fromstring(v3.call("batchCreate", prospects=payload, fmt="xml").content)
    assert [e.attrib["identifier"] for e in rsp.findall("errors/prospect")] == ["taken@example.com"]


def test_v3_error_keys_switch_is_validated_and_shown(fake: FakePardot, http: httpx.Client) -> None:
    with pytest.raises(ValueError, match="v3_batch_error_keys"):
        fake.state.v3_batch_error_keys = "email"
    assert (
        http.post("/_fake/switches", json={"v3_batch_error_keys": "identifier"}).json()[
            "v3_batch_error_keys"
        ]
        == "identifier"
    )
    assert fake.state.v3_batch_error_keys == "identifier"
    assert http.get("/_fake/state").json()["switches"]["v3_batch_error_keys"] == "identifier"
    fake.state.reset()
    assert fake.state.v3_batch_error_keys == "index"


# --- refused whole --------------------------------------------------------------------


def test_more_than_50_prospects_is_err_70(v4: Pardot, fake: FakePardot) -> None:
    entries = [{"email": f"p{i}@example.com"} for i in range(51)]
    text = v4.fails(70, "batchCreate", prospects=_prospects(entries), http_status=400)
    assert text == "Batch processing is limited to 50 prospects at once."
    assert fake.state.prospects("v4") == []
    fifty = [{"email": f"p{i}@example.com"} for i in range(50)]
    assert v4.call("batchCreate", prospects=_prospects(fifty)).json() == OK


def test_bad_payload_is_err_71(v4: Pardot, v3: Pardot) -> None:
    assert v4.fails(71, "batchCreate", prospects="{not json", http_status=400) == (
        "Input needs to be valid JSON or XML"
    )
    v4.fails(71, "batchCreate", prospects=json.dumps({"other": []}), http_status=400)
    v4.fails(71, "batchCreate", prospects=_prospects({"a@example.com": {}}), http_status=400)
    v3.fails(71, "batchCreate", prospects=_prospects([{"email": "a@example.com"}]), http_status=400)


def test_a_missing_prospects_field_is_err_71(v4: Pardot, fake: FakePardot) -> None:
    """PARDOT_API.md, Batch: RECORDED (pardot/api-docs #232) — a batch request without a
    readable ``prospects`` form field is HTTP 400 err 71 ``Input needs to be valid JSON
    or XML`` (it was err 13 here before: the facts say 71)."""
    assert v4.fails(71, "batchCreate", http_status=400) == "Input needs to be valid JSON or XML"
    v4.fails(71, "batchUpdate", prospects="  ", http_status=400)
    assert fake.state.prospects("v4") == []


def test_a_raw_json_body_is_err_71_in_xml(v4: Pardot, fake: FakePardot) -> None:
    """The transcript of pardot/api-docs #232, as sent: ``format`` and ``prospects`` in
    a raw JSON body (no form field) → HTTP 400, ``text/xml`` (the format parameter was
    not read either), ``<err code="71">``."""
    body = json.dumps({"format": "json", "prospects": [{"id": 1, "city": "X"}]})
    for content_type in ("text/plain", "application/json"):
        response = v4.http.post(
            "/api/prospect/version/4/do/batchUpdate",
            content=body,
            headers={**v4.headers, "Content-Type": content_type},
        )
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("text/xml")
        rsp = ET.fromstring(response.content)
        assert rsp.attrib["stat"] == "fail"
        assert rsp.find("err").attrib == {"code": "71"}  # type: ignore[union-attr]
    assert fake.state.prospects("v4") == []


# --- the "refuse" fault: Pardot refusing one entry ------------------------------------


def test_a_refuse_fault_fails_the_entry_it_names_with_its_text(
    v4: Pardot, fake: FakePardot
) -> None:
    """state.py ``inject("refuse", …)``: the entry naming ``match`` fails as Pardot
    fails an entry (its text under ``errors``); the others are applied."""
    fake.state.inject("refuse", err_code=85, match="Two@Example.com")
    entries = [{"email": "one@example.com"}, {"email": "two@example.com"}]
    response = v4.call("batchCreate", prospects=_prospects(entries))
    assert (response.status_code, response.json()) == (
        200,
        _failed({"1": "Unable to save the prospect"}),
    )
    assert [p["email"] for p in fake.state.prospects("v4")] == ["one@example.com"]
    assert fake.state.pending_faults() == []
    # Consumed: the same batch again is clean.
    assert v4.call("batchCreate", prospects=_prospects(entries[1:])).json() == OK


def test_a_refuse_fault_names_an_id_and_may_carry_its_own_text(
    v4: Pardot, fake: FakePardot
) -> None:
    first = fake.state.add_prospect("v4", email="a@example.com")
    second = fake.state.add_prospect("v4", email="b@example.com")
    fake.state.inject("refuse", err_code=3, match=str(second["id"]), text="Invalid prospect ID")
    entries = [{"id": first["id"], "city": "A"}, {"id": second["id"], "city": "B"}]
    document = v4.call("batchUpdate", prospects=_prospects(entries)).json()
    assert document == _failed({"1": "Invalid prospect ID"})
    assert [p["city"] for p in fake.state.prospects("v4")] == ["A", None]


def test_a_refuse_fault_names_a_v3_key(v3: Pardot, fake: FakePardot) -> None:
    fake.state.inject("refuse", err_code=4, match="bad@example.com", path_contains="/do/batch")
    keyed = {"bad@example.com": {}, "good@example.com": {}}
    assert v3.call("batchUpsert", prospects=_prospects(keyed)).json() == _failed(
        {"0": INVALID_EMAIL}
    )
    assert [p["email"] for p in fake.state.prospects("v3")] == ["good@example.com"]
