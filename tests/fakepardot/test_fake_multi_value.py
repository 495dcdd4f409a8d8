"""Contract: multi-value custom fields (checkbox, multi-select) in the fake, as Pardot
takes and shows them (issue 15).

Evidence:
- Writes, v3/v4 (pardot/api-docs, docs/kb/api-version-3/using-prospects.md, "Updating
  Fields with Multiple Values"): ``<field_name>_<count>=<value>``, ``<count>`` from 0 up
  by 1; "To clear all of the values for a checkbox or multi-select field, use
  ``<field_name>_0=``. To clear specific values, just set the values that should remain"
  — a write replaces every value.
- v4 batches: code-dot-org/code-dot-org, lib/cdo/contact_rollups/v2/pardot.rb (v4
  batchCreate/batchUpdate in production) sends a multi-value field in the batch JSON as
  ``[field_name]_0``, ``[field_name]_1`` keys. No public client or recording sends a JSON
  array there: UNCONFIRMED, the ``batch_list_values`` switch.
- Reads (code-dot-org/code-dot-org PR 35472, from real v4 XML answers): a multi-value
  field with several values is ``<db_Roles><value>Teacher</value><value>CSF
  Teacher</value></db_Roles>``, with one value a plain ``<db_Hour_of_Code_Organizer>2013
  </db_Hour_of_Code_Organizer>``. The JSON answer is the same document (``{"value":
  [...]}``, and a plain string for one value): Pardot's JSON mirrors its XML.
- v5: a JSON array (the fake's v5 rule, v5_fields.py; UNCONFIRMED by any recording).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

import pytest

from fakepardot import FakePardot

if TYPE_CHECKING:
    from tests.fakepardot.conftest import Pardot, V5Client


def _read(v4: Pardot, prospect_id: int) -> dict:
    return v4.ok("read", "id", prospect_id)["prospect"]


def test_several_values_read_back_as_a_value_list(v4: Pardot) -> None:
    created = v4.ok("create", "email", "m@example.com", plan_0="pro", plan_1="team")
    assert _read(v4, created["prospect"]["id"])["plan"] == {"value": ["pro", "team"]}


def test_one_value_reads_back_as_a_plain_value(v4: Pardot) -> None:
    """code-dot-org PR 35472: ``<db_Hour_of_Code_Organizer>2013</…>``, no ``<value>``."""
    created = v4.ok("create", "email", "m@example.com", plan_0="pro")
    assert _read(v4, created["prospect"]["id"])["plan"] == "pro"


def test_the_xml_answer_holds_one_value_element_per_value(v4: Pardot) -> None:
    created = v4.ok("create", "email", "m@example.com", plan_0="pro", plan_1="team")
    response = v4.call("read", "id", created["prospect"]["id"], fmt="xml")
    plan = ET.fromstring(response.text).find("prospect/plan")
    assert plan is not None
    assert [value.text for value in plan.findall("value")] == ["pro", "team"]


def test_field_0_empty_clears_every_value(v4: Pardot) -> None:
    created = v4.ok("create", "email", "m@example.com", plan_0="pro", plan_1="team")
    prospect_id = created["prospect"]["id"]
    v4.ok("update", "id", prospect_id, plan_0="")
    assert "plan" not in _read(v4, prospect_id)


def test_a_write_replaces_every_value_it_held(v4: Pardot) -> None:
    created = v4.ok("create", "email", "m@example.com", plan_0="pro", plan_1="team")
    prospect_id = created["prospect"]["id"]
    v4.ok("update", "id", prospect_id, plan_0="solo")
    assert _read(v4, prospect_id)["plan"] == "solo"


def test_a_v4_batch_entry_with_numbered_keys_is_a_multi_value(v4: Pardot, fake: FakePardot) -> None:
    seeded = fake.state.add_prospect("v4", email="b@example.com")
    entries = [{"id": seeded["id"], "plan_0": "pro", "plan_1": "team"}]
    response = v4.call("batchUpdate", prospects=json.dumps({"prospects": entries}))
    assert response.json()["@attributes"]["stat"] == "ok"
    assert _read(v4, seeded["id"])["plan"] == {"value": ["pro", "team"]}


@pytest.mark.parametrize("mode", ["expand", "refuse"])
def test_a_json_array_in_a_batch_entry_follows_the_switch(
    v4: Pardot, fake: FakePardot, mode: str
) -> None:
    """UNCONFIRMED (module docstring): "expand" takes the array as ``plan_0``, ``plan_1``;
    "refuse" fails that entry as a nested value is failed (err 90's text), and the
    batch's other entries are applied, as every failed entry leaves them (RECORDED)."""
    assert fake.state.batch_list_values == "expand"  # the default
    fake.state.batch_list_values = mode
    first = fake.state.add_prospect("v4", email="a@example.com")
    second = fake.state.add_prospect("v4", email="b@example.com")
    entries = [
        {"id": first["id"], "plan": ["pro", "team"]},
        {"id": second["id"], "first_name": "B"},
    ]
    document = v4.call("batchUpdate", prospects=json.dumps({"prospects": entries})).json()
    assert _read(v4, second["id"])["first_name"] == "B"
    if mode == "expand":
        assert document["@attributes"]["stat"] == "ok"
        assert _read(v4, first["id"])["plan"] == {"value": ["pro", "team"]}
    else:
        assert document["@attributes"] == {"stat": "fail", "version": 1}
        assert list(document["errors"]) == ["0"]
        assert "plan" not in _read(v4, first["id"])


def test_the_switch_refuses_a_value_outside_its_choices(fake: FakePardot) -> None:
    with pytest.raises(ValueError):
        fake.state.batch_list_values = "split"
    assert fake.state.switches()["batch_list_values"] == "expand"


def test_v5_takes_and_shows_a_multi_value_as_an_array(v5: V5Client) -> None:
    created = v5.ok(
        "POST",
        "prospects",
        201,
        params={"fields": "id,plan__c"},
        json={"email": "v@example.com", "plan__c": ["pro"]},
    )
    assert created["plan__c"] == ["pro"]  # v5 is typed: an array even for one value
    path = f"prospects/{created['id']}"
    cleared = v5.ok("PATCH", path, params={"fields": "id,plan__c"}, json={"plan__c": []})
    assert cleared["plan__c"] is None
