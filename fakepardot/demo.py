"""The credentials, business units and account contents the fake accepts out of the box.

Tests and ``make run`` configure connections with these values, so they are public
and fixed; they never grant access to anything real. Never put a real secret here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Demo:
    # Salesforce OAuth (refresh_token, password and client_credentials grants).
    client_id: str = "demo-client"
    client_secret: str = "demo-client-secret"
    refresh_token: str = "demo-refresh-token"
    username: str = "demo@example.com"
    password: str = "demo-password"
    # Business units: the Pardot-Business-Unit-Id header chooses the account.
    business_unit_v4: str = "0Uv000000000001CAA"
    business_unit_v3: str = "0Uv000000000003CAA"
    # Legacy Pardot login (email + password + user_key); the user decides the account.
    legacy_v3_email: str = "legacy-v3@example.com"
    legacy_v4_email: str = "legacy-v4@example.com"
    legacy_password: str = "demo-password"
    user_key: str = "0123456789abcdef0123456789abcdef"
    # Accounts, named by the API version they must use.
    account_v4: str = "v4"
    account_v3: str = "v3"
    # What every account holds at start (and after state.reset()).
    custom_fields: frozenset[str] = frozenset({"org_id", "external_id", "plan"})
    campaign_ids: tuple[int, ...] = (1001, 1002)  # the first is the oldest
    list_ids: tuple[int, ...] = (501, 502)
    external_activity_types: tuple[tuple[str, str], ...] = (
        ("ProspectSync", "Signed Up"),
        ("ProspectSync", "Order Completed"),
        ("ProspectSync", "Demo Requested"),
    )

    @property
    def business_units(self) -> dict[str, str]:
        """Business unit id → account name."""
        return {self.business_unit_v4: self.account_v4, self.business_unit_v3: self.account_v3}

    @property
    def legacy_users(self) -> dict[str, str]:
        """Legacy login email → account name (all share one password and user key)."""
        return {self.legacy_v3_email: self.account_v3, self.legacy_v4_email: self.account_v4}

    @property
    def account_versions(self) -> dict[str, int]:
        return {self.account_v3: 3, self.account_v4: 4}


DEMO = Demo()
