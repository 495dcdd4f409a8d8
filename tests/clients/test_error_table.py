"""``strategies.core.errors.PARDOT_ERRORS`` row by row against fakepardot (STYLE.md: "One table
for what a Pardot error means"): each err_code, sent by the fake on a real HTTP call,
is retried, refreshed or reported exactly as its row says."""

from __future__ import annotations

import pytest
from grpc import StatusCode

from fakepardot import FakePardot
from fakepardot.constants import ERROR_TEXTS
from strategies.core.errors import PARDOT_ERRORS, UNKNOWN_PARDOT_ERROR, PardotError

from .conftest import ClientFactory, api_calls, gateway, oauth_config, v3_config

UNKNOWN_BUSINESS_UNIT = "0Uv000000000009CAA"

#: Codes the fake can send that Pardot's docs list, and their texts with it.
FAKE_CODES = (22, 38, 50, 56, 61, 90, 94, 126, 130, 132)


def test_every_code_the_fake_knows_has_a_row() -> None:
    assert set(FAKE_CODES) <= set(PARDOT_ERRORS)
    # Query-only codes (5, 7, 19…23) cannot come from the calls this service makes.
    unused = {5, 7, 19, 20, 21, 23}
    assert set(ERROR_TEXTS) - unused <= set(PARDOT_ERRORS)


@pytest.mark.parametrize("err_code", sorted(PARDOT_ERRORS))
async def test_each_err_code_does_what_its_row_says(
    fake: FakePardot, make_client: ClientFactory, err_code: int
) -> None:
    rule = PARDOT_ERRORS[err_code]
    seeded = fake.state.add_prospect("v4", email="row@example.com")
    pardot = gateway(make_client(oauth_config(fake, max_retries=1)))
    fake.state.inject("err", times=1, err_code=err_code, path_contains="/do/update/")

    if rule.retryable or rule.refresh_credentials:
        updated = await pardot.update_by_id(seeded["id"], {"first_name": "Row"})
        assert updated.id == seeded["id"]
        assert [(c.attempt, c.err_code) for c in pardot.calls] == [(1, err_code), (2, 0)]
        assert fake.state.token_grants == (2 if rule.refresh_credentials else 1)
        return

    with pytest.raises(PardotError) as caught:
        await pardot.update_by_id(seeded["id"], {"first_name": "Row"})
    error = caught.value
    assert (error.code, error.reason) == (rule.code, rule.reason.name)
    assert error.metadata["err_code"] == str(err_code)
    assert len(api_calls(fake)) == 1  # not retried
    if rule.fix:  # the message says which setting of this connection to change
        assert "to fix:" in error.message
        assert "connections.default." in error.message


async def test_an_err_code_without_a_row_is_a_precondition_failure(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    pardot = gateway(make_client(oauth_config(fake)))
    fake.state.inject("err", times=1, err_code=4242, path_contains="/do/read/")
    with pytest.raises(PardotError) as caught:
        await pardot.read_by_email("a@example.com")
    assert caught.value.rule is UNKNOWN_PARDOT_ERROR
    assert caught.value.code is StatusCode.FAILED_PRECONDITION
    assert len(api_calls(fake)) == 1


@pytest.mark.parametrize(
    ("config", "api_version", "err_code", "fix"),
    [
        # Pardot's own refusals, not injected ones: the fake knows the accounts.
        (
            {"business_unit_id": UNKNOWN_BUSINESS_UNIT},
            4,
            201,
            "connections.default.business_unit_id",
        ),
        ({}, 3, 88, "set connections.default.api_version = 4"),
        ({"api_version": 3}, 3, 88, "set connections.default.api_version = 4"),
    ],
)
async def test_settings_errors_name_the_setting_to_change(
    fake: FakePardot,
    make_client: ClientFactory,
    config: dict[str, object],
    api_version: int,
    err_code: int,
    fix: str,
) -> None:
    pardot = gateway(make_client(oauth_config(fake, **config)), api_version=api_version)
    with pytest.raises(PardotError) as caught:
        await pardot.read_by_email("a@example.com")
    assert caught.value.err_code == err_code
    assert caught.value.code is StatusCode.FAILED_PRECONDITION
    assert fix in caught.value.message
    assert len(api_calls(fake)) == 1


async def test_a_v3_account_asked_for_v4_says_to_set_version_3(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    pardot = gateway(make_client(v3_config(fake)), api_version=4)
    with pytest.raises(PardotError) as caught:
        await pardot.read_by_email("a@example.com")
    assert caught.value.reason == "ACCOUNT_REQUIRES_API_V3"
    assert "set connections.v3.api_version = 3" in caught.value.message
