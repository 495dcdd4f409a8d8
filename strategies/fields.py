"""Segment traits → Pardot prospect fields.

The mapping is a table, not an if-cascade (STYLE.md): each Pardot field lists the trait
paths that feed it, first non-empty wins, so adding a field is one line and the table is
the documentation. Every other trait whose name is a valid Pardot field id, and not a
parameter Pardot reads from the request (``format``, ``api_key``, ``prospects``, …),
passes through as a custom field. Nothing here calls Pardot or decides identity.

A trait set to null clears its Pardot field, as Segment's users expect (``phone: null``
empties the phone): the field is sent empty, which is how Pardot clears a value
(pardot/api-docs, docs/kb/api-version-4/prospects.md, "Updating Field Values": "To clear
a value, submit ... a parameter with no specified value, such as ``phone=``"; v5 gets
``null``, ``clients.wire.v5``). For a standard field the null must be at a path of the
table (``address: {city: null}`` clears the city; ``address: null`` leaves the address
as it is) and no other source of the field may hold a value (``first_name: null,
firstName: "Tom"`` sets Tom). The email is never cleared: it identifies the prospect and
Pardot declines a write that clears a required field.

A list of scalars for a CUSTOM field is a multi-value field (checkbox, multi-select):
``tags: ["a", "b"]`` becomes the tuple ``("a", "b")``, which ``clients.wire`` sends as
Pardot's ``tags_0=a&tags_1=b`` (v3/v4) or a JSON array (v5). Each value is formatted as
:func:`format_value` formats a scalar; empty strings are dropped (an empty choice is no
choice, and ``tags_0=`` would clear every value) and repeats kept once. An empty list
clears the field: ``()`` is sent as ``tags_0=``, Pardot's documented way ("To clear all
of the values for a checkbox or multi-select field, use ``<field_name>_0=``",
pardot/api-docs, docs/kb/api-version-3/using-prospects.md). A standard field takes one
value, so a list there, or a list holding objects, lists or nulls, is INVALID_ARGUMENT
naming the trait.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from strategies.core.errors import InvalidArgument
from strategies.core.model import FieldValue
from strategies.core.pardot_facts import READ_ONLY_FIELDS, WRITABLE_FIELDS
from strategies.validation import (
    MAX_FIELD_VALUES,
    check_email,
    check_field_id,
    check_trait_count,
    check_value_size,
)

#: Pardot field → the trait paths that feed it (dotted paths reach into objects).
TRAIT_SOURCES: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "salutation": ("salutation",),
    "first_name": ("first_name", "firstName"),
    "last_name": ("last_name", "lastName"),
    "phone": ("phone",),
    "company": ("company", "company.name"),
    "job_title": ("job_title", "jobTitle", "title"),
    "website": ("website",),
    "department": ("department",),
    "industry": ("industry",),
    "employees": ("employees",),
    "annual_revenue": ("annual_revenue", "annualRevenue"),
    "address_one": ("address.street",),
    "city": ("address.city",),
    "state": ("address.state",),
    "zip": ("address.postal_code",),
    "country": ("address.country",),
    "notes": ("notes",),
    "comments": ("description",),
    "years_in_business": ("years_in_business",),
}

#: The table with each dotted path split once, here, rather than on every call.
_SOURCE_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    pardot_field: tuple(tuple(path.split(".")) for path in paths)
    for pardot_field, paths in TRAIT_SOURCES.items()
}

#: Top-level traits the table consumes; they never pass through as custom fields.
#: ``name`` is split into first and last name when those are absent.
CONSUMED_TRAITS: frozenset[str] = frozenset(
    {path[0] for paths in _SOURCE_PATHS.values() for path in paths} | {"name"}
)


#: Fields a null trait leaves alone: the email identifies the prospect (and is required).
_NEVER_CLEARED = frozenset({"email"})


#: Pardot's own fields: each takes one value (only custom fields take several).
STANDARD_FIELDS: frozenset[str] = frozenset(WRITABLE_FIELDS) | frozenset(READ_ONLY_FIELDS)


@dataclass
class MappedFields:
    fields: dict[str, FieldValue] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def prospect_fields(traits: Mapping[str, Any], *, path: str = "traits") -> MappedFields:
    """Map traits to Pardot fields; ``path`` names the traits in error messages."""
    check_trait_count(traits, path)
    mapped = MappedFields()
    for pardot_field, sources in _SOURCE_PATHS.items():
        cleared = False
        for source in sources:
            if source[0] not in traits:
                continue  # most sources are absent: the one cheap test says so
            value = _at(traits, source)
            if value is None:
                cleared = cleared or _null_at(traits, source)
                continue
            if isinstance(value, dict):
                continue  # an object at a scalar path (company: {...}) → the next source
            where = f"{path}.{'.'.join(source)}"
            mapped.fields[pardot_field] = field_value(pardot_field, value, where)
            break
        else:
            if cleared and pardot_field not in _NEVER_CLEARED:
                mapped.fields[pardot_field] = ""  # empty clears the field in Pardot
    email = mapped.fields.get("email")
    if isinstance(email, str) and email.strip():  # every write with an email: Pardot's rule
        mapped.fields["email"] = check_email(email, f"{path}.email")
    _split_name(traits, mapped.fields)
    for name, value in traits.items():
        if name in CONSUMED_TRAITS:
            continue
        if name in READ_ONLY_FIELDS:
            mapped.warnings.append(f"{path}.{name} ignored: {name} is read-only in Pardot")
            continue
        check_field_id(name, f"{path}.{name}")
        mapped.fields[name] = field_value(name, value, f"{path}.{name}")
    check_multi_value_names(mapped.fields, lambda name: f"{path}.{name}")
    return mapped


def check_multi_value_names(fields: Mapping[str, FieldValue], where: Callable[[str], str]) -> None:
    """Refuse a field named ``<f>_<n>`` beside a multi-value ``<f>``: v3/v4 send the
    multi-value as ``<f>_0``, ``<f>_1``…, so the two would collide on the wire and
    Pardot would take one for the other. ``where`` names a field in the request."""
    for name, value in fields.items():
        if not isinstance(value, tuple):
            continue
        for other in fields:
            prefix, _, index = other.rpartition("_")
            if prefix == name and index.isdigit():
                raise InvalidArgument(
                    where(other),
                    f"is sent as Pardot's {other}, which is also how the values of the "
                    f"multi-value field {name} are sent ({name}_0, {name}_1, …): rename one",
                )


def field_value(pardot_field: str, value: Any, field_path: str) -> FieldValue:
    """One value for ``pardot_field``: :func:`format_value`'s string, or for a custom
    field given a list, its multi-value tuple (the module docstring's rule). Track
    mappings' properties go through here too."""
    if not isinstance(value, list):
        return format_value(value, field_path)
    if pardot_field in STANDARD_FIELDS:
        raise InvalidArgument(
            field_path,
            f"is a list, but {pardot_field} is a standard Pardot field and takes one value: "
            "only a custom field (checkbox, multi-select) takes several",
        )
    return multi_value(value, field_path)


def multi_value(values: list[Any], field_path: str) -> tuple[str, ...]:
    """A multi-value custom field's values: each scalar formatted, empty strings
    dropped, repeats kept once, in order; ``()`` for an empty list (clears the field)."""
    if len(values) > MAX_FIELD_VALUES:
        raise InvalidArgument(
            field_path,
            f"holds {len(values)} values; a multi-value field takes at most {MAX_FIELD_VALUES}",
        )
    kept: dict[str, None] = {}
    for index, item in enumerate(values):
        where = f"{field_path}[{index}]"
        if item is None or isinstance(item, dict | list):
            kind = "null" if item is None else "an object" if isinstance(item, dict) else "a list"
            raise InvalidArgument(
                where, f"is {kind}; a multi-value field takes strings, numbers or bools"
            )
        text = format_value(item, where)
        if text:
            kept[text] = None
    return tuple(kept)


def format_value(value: Any, field_path: str) -> str:
    """Render one trait value the way Pardot's form-encoded writes expect it.

    None clears the field (Pardot clears on an empty value). Struct numbers arrive as
    floats, so 10.0 is sent as "10". Objects and lists have no single Pardot value, and
    a value over ``MAX_VALUE_BYTES`` is refused.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return check_value_size(value, field_path)
    kind = "an object" if isinstance(value, dict) else "a list"
    raise InvalidArgument(field_path, f"is {kind}; a Pardot field takes a string, number or bool")


def _split_name(traits: Mapping[str, Any], fields: dict[str, FieldValue]) -> None:
    name = traits.get("name")
    if not isinstance(name, str) or not name.strip():
        return
    first, _, last = name.strip().partition(" ")
    if "first_name" not in fields:
        fields["first_name"] = first
    if "last_name" not in fields and last.strip():
        fields["last_name"] = last.strip()


def _null_at(traits: Mapping[str, Any], path: tuple[str, ...]) -> bool:
    """Whether the traits hold an explicit null at ``path`` itself (not a null object
    above it, nor a missing key)."""
    value: Any = traits
    for part in path:
        if not isinstance(value, Mapping) or part not in value:
            return False
        value = value[part]
    return value is None


def _at(traits: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = traits
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value
