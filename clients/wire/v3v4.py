"""The API v3/v4 dialect (PARDOT_API.md, "Requests"): ``/api/<object>/version/<v>/do/
<operation>/…`` paths, ``format=json`` in every query string, a read's data in the query
and a write's in the form body, and answers in Pardot's envelope
(:func:`clients.wire.responses.parse_response`).

Parameter names the client sets itself (``format``, credentials) can never come from
a caller's fields. A multi-value custom field (a tuple) travels as Pardot's
``<field>_0=a&<field>_1=b`` (:func:`form_fields`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from clients.wire.paths import api_path
from clients.wire.request import PardotRequest
from clients.wire.responses import parse_response
from strategies.core import pardot_facts as facts
from strategies.core.model import Fields

#: The query of every v3/v4 request that carries no data in it: shared, never copied.
_FORMAT_ONLY: Final[Mapping[str, str]] = MappingProxyType(dict([facts.FORMAT_PARAM]))


def api_request(
    method: str,
    pardot_object: str,
    version: int,
    operation: str,
    path_params: Mapping[str, str | int],
    params: Mapping[str, str],
    *,
    idempotent: bool,
    batch_size: int = 0,
) -> PardotRequest:
    """One v3/v4 call: ``method`` is "GET" (``params`` in the query) or "POST"
    (``params`` as the form body). Raises ValueError for a version other than 3 or 4,
    an empty path value, or a parameter the client sets itself."""
    path = api_path(pardot_object, version, operation, path_params)
    if not facts.RESERVED_PARAMS.isdisjoint(params):
        reserved = sorted(facts.RESERVED_PARAMS.intersection(params))
        raise ValueError(f"parameters {reserved} are set by the client itself")
    if method == "GET":
        query = {**params, **_FORMAT_ONLY} if params else _FORMAT_ONLY
        return PardotRequest(method, path, idempotent, parse_response, query=query)
    return PardotRequest(
        method,
        path,
        idempotent,
        parse_response,
        query=_FORMAT_ONLY,
        form=params,
        batch_size=batch_size,
    )


def form_fields(fields: Fields) -> dict[str, str]:
    """``fields`` as v3/v4 form parameters: a string as it is; a multi-value field's
    values as ``<field>_0``, ``<field>_1``, … in order, and ``()`` as ``<field>_0=``,
    which clears every value. Pardot's "Updating Fields with Multiple Values"
    (pardot/api-docs, docs/kb/api-version-3/using-prospects.md): "``<count>`` must start
    at 0 and increase by 1", and "To clear all of the values for a checkbox or
    multi-select field, use ``<field_name>_0=``"; a write replaces every value the field
    held ("To clear specific values, just set the values that should remain")."""
    form: dict[str, str] = {}
    for name, value in fields.items():
        if isinstance(value, str):
            form[name] = value
        elif not value:
            form[f"{name}_0"] = ""
        else:
            form.update({f"{name}_{index}": item for index, item in enumerate(value)})
    return form


def prospect_read(version: int, id_field: str, id_value: str | int) -> PardotRequest:
    """``read/<id_field>/<value>``: a read is always safe to repeat."""
    return api_request(
        "GET", facts.PROSPECT, version, "read", {id_field: id_value}, {}, idempotent=True
    )


def prospect_write(
    version: int,
    operation: str,
    id_field: str,
    id_value: str | int,
    fields: Fields,
    *,
    idempotent: bool,
) -> PardotRequest:
    """``<operation>/<id_field>/<value>`` with ``fields`` as the form
    (:func:`form_fields`): one prospect written through the single-call endpoint, whose
    answer holds the prospect."""
    return api_request(
        "POST",
        facts.PROSPECT,
        version,
        operation,
        {id_field: id_value},
        form_fields(fields),
        idempotent=idempotent,
    )
