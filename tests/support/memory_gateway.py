"""An in-memory Pardot behind ``strategies.base.Gateway``, for unit tests of strategies.

It keeps Pardot's identity rules per API version (PARDOT_API.md) so a strategy's
decisions can be tested without a network, and records every call it is asked for
(by verb: ``upsert_by_email``, ``read_by_id``, …). API v5: ``upsertLatestByEmail``
matches the email exactly and takes the prospect written last; a recycle bin
(``delete``) that it searches when asked (``upsert_latest_or_undelete``); err 109 for an
id nobody has; and, with ``stale_reads``, the read cache that trails writes (prospects
this gateway created are not yet visible to reads). Like the real gateway it implements
only the two primitives, so the verbs and their version rules are the ones strategies
meet in production; tests/clients/test_gateway_contract.py holds both to one contract.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from clients.state.identity import IdentityView, MemoryIdentityStore
from strategies.base import ProspectKey, WriteOperation
from strategies.core.errors import FailedPrecondition, PardotError, Reason
from strategies.core.model import Fields, Prospect
from strategies.track import ListChange, TrackGateway


@dataclass
class MemoryGateway(TrackGateway):
    api_version: int = 3
    dry_run: bool = False
    prospects: dict[int, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    identity: IdentityView = field(
        default_factory=lambda: IdentityView(MemoryIdentityStore(), "default")
    )
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1000))
    #: list id → member prospect ids; a list not here is unknown to "Pardot" (err 55).
    lists: dict[int, set[int]] = field(default_factory=lambda: {501: set(), 502: set()})
    #: list id → the members who opted out of it (they stay members, as in Pardot).
    opted_out: dict[int, set[int]] = field(default_factory=dict)
    #: Recorded external activities: {"extension", "type", "value", "email"}.
    activities: list[dict[str, str]] = field(default_factory=list)
    #: (extension, type) → the refusal the connection met lately for it (track refuses
    #: such a mapping before any call: ``TrackGateway.refused_external_activity``).
    refused_types: dict[tuple[str, str], PardotError] = field(default_factory=dict)
    #: False: a legacy-login connection, which cannot reach API v5.
    oauth: bool = True
    #: API v5's recycle bin: deleted prospects (their ids), out of every read and match
    #: but ``upsert_latest_or_undelete``'s.
    deleted: set[int] = field(default_factory=set)
    #: v5 reads come from a cache that may trail writes by up to 60 s: when set, reads do
    #: not see the prospects this gateway created.
    stale_reads: bool = False
    #: prospect id → when it was last written (the latest activity, for v5's upsert).
    _touched: dict[int, int] = field(default_factory=dict)
    _clock: itertools.count = field(default_factory=lambda: itertools.count(1))
    _created_here: set[int] = field(default_factory=set)
    #: Every read's key as asked (with the custom fields it must return).
    read_keys: list[ProspectKey] = field(default_factory=list)

    # --- test helpers -------------------------------------------------------------
    def seed(self, **fields: Any) -> int:
        prospect_id = next(self._ids)
        self.prospects[prospect_id] = {"id": prospect_id, **fields}
        self._touched[prospect_id] = next(self._clock)
        return prospect_id

    def delete(self, prospect_id: int) -> None:
        """Into the recycle bin (v5 ``DELETE``, or a user in Pardot's UI)."""
        self.deleted.add(prospect_id)

    @property
    def ops(self) -> list[str]:
        return [op for op, _ in self.calls]

    # --- the Gateway primitives (the verbs are strategies.base.Gateway's) ---------------
    async def write(
        self,
        operation: WriteOperation,
        key: ProspectKey,
        fields: Fields,
        *,
        need_answer: bool,
    ) -> Prospect:
        self.calls.append(
            (operation if operation == "create" else f"{operation}_by_{key.by}", key.value)
        )
        if operation in ("upsert_latest", "upsert_latest_or_undelete"):  # v5 only
            return self._upsert_latest(str(key.value), fields, operation)
        if operation == "create":
            email = str(key.value)
            if self.api_version == 3 and self._by_email(email):
                raise PardotError(9, "A prospect with the specified email address already exists")
            return self._write(None, {**fields, "email": email})
        if key.by == "email":  # upsert: v3 only (the base refuses it in v4)
            matches = self._by_email(str(key.value))
            if matches:
                return self._write(matches[0]["id"], fields)
            return self._write(None, {**fields, "email": str(key.value)})
        if key.by == "fid":
            return self._write(self._require_fid(str(key.value)), fields)
        prospect_id = int(key.value)
        if prospect_id not in self.prospects:
            if self.api_version == 5:
                raise PardotError(109, "The requested record was not found.")
            raise PardotError(3, "Invalid prospect ID")
        if prospect_id in self.deleted:  # v5: a PATCH cannot reach the recycle bin
            raise PardotError(
                219, "Deleted records can't be updated. Please undelete before updating."
            )
        return self._write(prospect_id, fields)

    async def read(self, key: ProspectKey) -> list[Prospect]:
        self.calls.append((f"read_by_{key.by}", key.value))
        self.read_keys.append(key)
        if key.by == "email":
            return [_prospect(p) for p in self._by_email(str(key.value)) if self._readable(p)]
        if key.by == "fid":
            found = self._find_fid(str(key.value))
        else:
            found = self.prospects.get(int(key.value))
        return [_prospect(found)] if found and self._readable(found) else []

    # --- what track mappings add (strategies.track.TrackGateway) ----------------------
    async def add_to_list(
        self, prospect_id: int | None, list_id: int, *, resubscribe: bool
    ) -> ListChange:
        self.calls.append(("add_to_list", (prospect_id, list_id)))
        if self.dry_run:
            return ListChange.PLANNED
        assert prospect_id is not None, "only a dry run may add a prospect it has no id for"
        self._check_membership(prospect_id, list_id)
        if prospect_id not in self.lists[list_id]:
            self.lists[list_id].add(prospect_id)
            return ListChange.ADDED
        opted_out = self.opted_out.setdefault(list_id, set())
        if prospect_id not in opted_out:
            return ListChange.ALREADY_MEMBER  # err 58, already a member: success
        if not resubscribe:
            return ListChange.OPTED_OUT
        self.calls.append(("resubscribe", (prospect_id, list_id)))
        opted_out.discard(prospect_id)
        return ListChange.RESUBSCRIBED

    async def remove_from_list(self, prospect_id: int | None, list_id: int) -> ListChange:
        self.calls.append(("remove_from_list", (prospect_id, list_id)))
        if self.dry_run:
            return ListChange.PLANNED
        assert prospect_id is not None, "only a dry run may remove a prospect it has no id for"
        self._check_membership(prospect_id, list_id)
        if prospect_id not in self.lists[list_id]:
            return ListChange.NOT_A_MEMBER
        self.lists[list_id].discard(prospect_id)
        self.opted_out.get(list_id, set()).discard(prospect_id)
        return ListChange.REMOVED

    def _check_membership(self, prospect_id: int, list_id: int) -> None:
        if list_id not in self.lists:
            raise PardotError(55, "Invalid list ID")
        if prospect_id not in self.prospects:
            raise PardotError(3, "Invalid prospect ID")

    def _apply_list_fields(self, prospect_id: int, fields: Mapping[str, str]) -> dict[str, str]:
        """v3/v4's ``list_<id>=0|1`` on a prospect write: the membership changes, the
        field is not stored. v5 has no such field (a test would see it stored)."""
        if self.api_version == 5:
            return dict(fields)
        kept: dict[str, str] = {}
        for name, value in fields.items():
            match = re.fullmatch(r"list_(\d+)", name)
            if match is None:
                kept[name] = value
                continue
            list_id = int(match.group(1))
            if list_id not in self.lists:
                raise PardotError(55, "Invalid list ID")
            if value == "0":
                self.lists[list_id].discard(prospect_id)
                self.opted_out.get(list_id, set()).discard(prospect_id)
            else:
                self.lists[list_id].add(prospect_id)
        return kept

    async def unknown_lists(self, list_ids: Sequence[int]) -> tuple[int, ...]:
        return tuple(list_id for list_id in list_ids if list_id not in self.lists)

    def refused_external_activity(self, extension: str, activity_type: str) -> PardotError | None:
        return self.refused_types.get((extension, activity_type))

    def check_external_activities(self) -> None:
        if not self.oauth:
            raise FailedPrecondition(
                "API v5 needs OAuth", reason=Reason.EXTERNAL_ACTIVITY_NEEDS_OAUTH
            )

    async def record_external_activity(
        self, extension: str, activity_type: str, value: str, email: str
    ) -> bool:
        self.check_external_activities()
        self.calls.append(("record_external_activity", (extension, activity_type)))
        if self.dry_run:
            return False
        self.activities.append(
            {"extension": extension, "type": activity_type, "value": value, "email": email}
        )
        return True

    # --- internals ------------------------------------------------------------------
    def _by_email(self, email: str) -> list[dict[str, Any]]:
        if self.api_version == 5:  # v5 matches the email exactly (case-sensitive)
            return [
                p
                for p in self.prospects.values()
                if p.get("email") == email and p["id"] not in self.deleted
            ]
        return [
            p
            for p in self.prospects.values()
            if p.get("email", "").lower() == email.lower() and p["id"] not in self.deleted
        ]

    def _readable(self, stored: Mapping[str, Any]) -> bool:
        return stored["id"] not in self.deleted and not (
            self.stale_reads and stored["id"] in self._created_here
        )

    def _upsert_latest(self, email: str, fields: Fields, operation: str) -> Prospect:
        """v5 ``upsertLatestByEmail``: the exact email, latest written first; then the
        recycle bin when asked; else a new prospect."""

        def latest(ids: list[int]) -> int | None:
            return max(ids, key=lambda i: self._touched.get(i, 0)) if ids else None

        same = [i for i, p in self.prospects.items() if p.get("email") == email]
        found = latest([i for i in same if i not in self.deleted])
        if found is None and operation == "upsert_latest_or_undelete":
            found = latest([i for i in same if i in self.deleted])
            if found is not None and not self.dry_run:
                self.deleted.discard(found)
        return self._write(found, {**fields, "email": email})

    def _find_fid(self, fid: str) -> dict[str, Any] | None:
        for p in self.prospects.values():
            if fid in (p.get("crm_lead_fid"), p.get("crm_contact_fid")):
                return p
        return None

    def _require_fid(self, fid: str) -> int:
        found = self._find_fid(fid)
        if found is None:
            raise PardotError(77, "Invalid prospect fid")
        return found["id"]

    def _write(self, prospect_id: int | None, fields: Mapping[str, str]) -> Prospect:
        if self.dry_run:
            return Prospect(id=prospect_id, fields=dict(fields), planned=True)
        created = prospect_id is None
        if created:
            prospect_id = next(self._ids)
            self.prospects[prospect_id] = {"id": prospect_id}
            self._created_here.add(prospect_id)
        self._touched[prospect_id] = next(self._clock)
        fields = self._apply_list_fields(prospect_id, fields)
        stored = self.prospects[prospect_id]
        stored.update({k: v for k, v in fields.items() if v != ""})
        for k in [k for k, v in fields.items() if v == ""]:
            stored.pop(k, None)
        return replace(_prospect(stored), created=created)


def _prospect(stored: Mapping[str, Any]) -> Prospect:
    return Prospect(id=stored["id"], email=stored.get("email", ""), fields=dict(stored))
