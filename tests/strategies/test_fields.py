"""Traits → Pardot fields, including the Segment documentation's own example."""

import pytest

from strategies.core.errors import InvalidArgument
from strategies.fields import prospect_fields
from support.examples import TOM


def test_documentation_example_maps_to_pardot_fields() -> None:
    mapped = prospect_fields(TOM)
    assert mapped.fields == {
        "email": "tom@example.com",
        "first_name": "Tom",
        "last_name": "Smykowski",
        "company": "Initech, Inc",
        "department": "Customer Service",
        "years_in_business": "10",
        "notes": 'Working on a "Jump to Conclusions" mat',
        "comments": "Im a people person. What the hell is wrong with you people?",
        "job_title": "VP of Engineering",
    }
    assert mapped.warnings == []


def test_aliases_nested_objects_and_first_source_wins() -> None:
    mapped = prospect_fields(
        {
            "firstName": "Bill",
            "lastName": "Lumbergh",
            "jobTitle": "Division VP",
            "title": "ignored: jobTitle comes first",
            "company": {"name": "Initech"},
            "annualRevenue": 1000000.0,
            "employees": 250.0,
            "address": {
                "street": "1 Initech Way",
                "city": "Austin",
                "state": "TX",
                "postal_code": "78701",
                "country": "US",
            },
            "phone": "+1 512 555 0100",
            "website": "https://initech.example",
            "industry": "Software",
            "salutation": "Mr.",
        }
    )
    assert mapped.fields == {
        "first_name": "Bill",
        "last_name": "Lumbergh",
        "job_title": "Division VP",
        "company": "Initech",
        "annual_revenue": "1000000",
        "employees": "250",
        "address_one": "1 Initech Way",
        "city": "Austin",
        "state": "TX",
        "zip": "78701",
        "country": "US",
        "phone": "+1 512 555 0100",
        "website": "https://initech.example",
        "industry": "Software",
        "salutation": "Mr.",
    }


def test_name_does_not_override_explicit_first_and_last_name() -> None:
    mapped = prospect_fields({"name": "Tom Smykowski", "first_name": "Thomas"})
    assert mapped.fields == {"first_name": "Thomas", "last_name": "Smykowski"}


def test_single_word_name_sets_first_name_only() -> None:
    assert prospect_fields({"name": "Cher"}).fields == {"first_name": "Cher"}


def test_custom_fields_pass_through_with_values_rendered_for_pardot() -> None:
    mapped = prospect_fields(
        {"org_id": "1sf324fd53", "seats": 12.0, "ratio": 0.5, "vip": True, "plan": None}
    )
    assert mapped.fields == {
        "org_id": "1sf324fd53",
        "seats": "12",
        "ratio": "0.5",
        "vip": "true",
        "plan": "",
    }


def test_read_only_pardot_fields_are_ignored_with_a_warning() -> None:
    mapped = prospect_fields({"email": "a@b.co", "id": "u-1", "created_at": "x"})
    assert mapped.fields == {"email": "a@b.co"}
    assert mapped.warnings == [
        "traits.id ignored: id is read-only in Pardot",
        "traits.created_at ignored: created_at is read-only in Pardot",
    ]


@pytest.mark.parametrize(
    ("traits", "field", "words"),
    [
        ({"org-id": "x"}, "traits.org-id", "is not a Pardot field id"),
        ({"9lives": "x"}, "traits.9lives", "is not a Pardot field id"),
        ({"first_name": ["a", "b"]}, "traits.first_name", "is a standard Pardot field"),
        ({"score": [1, 2]}, "traits.score", "is a standard Pardot field"),
        ({"tags": [{"a": 1}]}, "traits.tags[0]", "is an object"),
        ({"tags": ["a", ["b"]]}, "traits.tags[1]", "is a list"),
        ({"tags": ["a", None]}, "traits.tags[1]", "is null"),
        ({"tags": list(range(101))}, "traits.tags", "at most 100"),
        ({"profile": {"a": 1}}, "traits.profile", "is an object"),
    ],
)
def test_unusable_traits_are_invalid_arguments_naming_the_field(traits, field, words) -> None:
    with pytest.raises(InvalidArgument) as caught:
        prospect_fields(traits)
    assert caught.value.field == field
    assert words in caught.value.message
    assert caught.value.message.startswith(field)


def test_error_path_follows_where_traits_live() -> None:
    with pytest.raises(InvalidArgument) as caught:
        prospect_fields({"bad key": 1}, path="context.traits")
    assert caught.value.field == "context.traits.bad key"


# --- multi-value custom fields (issue 15) ---------------------------------------------


def test_a_list_for_a_custom_field_is_a_multi_value_tuple() -> None:
    mapped = prospect_fields({"email": "a@b.co", "tags": ["pro", "team"]})
    assert mapped.fields == {"email": "a@b.co", "tags": ("pro", "team")}


def test_multi_values_are_formatted_as_scalars_are_without_empties_or_repeats() -> None:
    mapped = prospect_fields({"tags": ["a", 10.0, 2.5, True, "", "a", 3]})
    assert mapped.fields == {"tags": ("a", "10", "2.5", "true", "3")}


def test_an_empty_list_clears_a_multi_value_field() -> None:
    assert prospect_fields({"tags": []}).fields == {"tags": ()}
    assert prospect_fields({"tags": [""]}).fields == {"tags": ()}


def test_a_standard_field_from_a_table_path_refuses_a_list_naming_that_path() -> None:
    with pytest.raises(InvalidArgument) as caught:
        prospect_fields({"address": {"city": ["Paris", "Lyon"]}})
    assert caught.value.field == "traits.address.city"
    assert "city is a standard Pardot field and takes one value" in caught.value.message


def test_each_multi_value_is_bounded_as_a_value_is() -> None:
    with pytest.raises(InvalidArgument) as caught:
        prospect_fields({"tags": ["ok", "x" * (64 * 1024 + 1)]})
    assert caught.value.field == "traits.tags[1]"
