"""The plain values every layer shares: the event, the caller's settings (resolved
against the connection), the prospect as Pardot returned it, the record of each Pardot
call (which becomes ``PardotCall`` in every response), the result, and the keys of the
identity map. Plain Python values: the server converts from protobuf, so strategies and
their unit tests never touch generated code.

This module is a leaf: it imports nothing of ours, and never does I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

#: One field's value: a string, or the values of a multi-value custom field (checkbox,
#: multi-select) in order, ``()`` clearing them all. ``clients.wire`` encodes a tuple as
#: each dialect takes it (``f_0=a&f_1=b`` on v3/v4, a JSON array on v5).
FieldValue = str | tuple[str, ...]
#: Field values as Pardot takes them (form strings, or a multi-value field's tuple).
Fields = Mapping[str, FieldValue]


@dataclass(frozen=True)
class Prospect:
    """One prospect as Pardot returned it, or as a dry run would have written it.

    ``id`` is None only when nobody can know it: a planned create in a dry run, or an
    entry of a batch whose response carries no ids. Never a guess.

    ``created`` is None when nobody can know whether the write created the prospect: an
    upsert sent in a batch, whose answer says neither. ``fields`` are Pardot's answer,
    or, for a planned write or a batch entry (whose answer holds no prospect), the
    fields as sent.
    """

    id: int | None
    email: str = ""
    fields: Mapping[str, Any] = field(default_factory=dict)
    created: bool | None = False
    planned: bool = False
    #: Not written: the service last wrote these same values to it (``skip_unchanged``),
    #: so no call was made. ``fields`` are the fields as they would have been sent.
    unchanged: bool = False

    def get(self, name: str) -> Any:
        return self.fields.get(name)


@dataclass
class CallRecord:
    """One HTTP call to Pardot, made or (dry run) planned. ``path`` never holds secrets:
    credentials travel in headers only."""

    method: str
    path: str
    http_status: int = 0
    err_code: int = 0
    duration_s: float = 0.0
    planned: bool = False
    attempt: int = 1
    #: How many prospects the call carried when it was a batch call (clients.coalescer);
    #: 0 for a call that is not one. Each caller in a batch lists the same call.
    batch_size: int = 0


class Outcome(enum.Enum):
    """Mirrors ``prospectsync.v1.Outcome`` by name."""

    CREATED = "CREATED"
    UPDATED = "UPDATED"
    PLANNED = "PLANNED"
    DUPLICATE_MESSAGE = "DUPLICATE_MESSAGE"
    #: Track only: the event has no mapping, so nothing was sent to Pardot.
    SKIPPED = "SKIPPED"
    #: Written in a batch call whose answer has no id and does not say whether it created.
    UPSERTED = "UPSERTED"
    #: The writes would change nothing the service last wrote: no call was made.
    UNCHANGED = "UNCHANGED"


class SyncMode(enum.Enum):
    """Mirrors ``prospectsync.v1.SyncMode`` by name (UNSPECIFIED is UPSERT)."""

    UPSERT = "UPSERT"
    #: Never create: with no match the call is skipped, with 0 writes.
    UPDATE_ONLY = "UPDATE_ONLY"
    #: Never touch an existing prospect: with a match the call is skipped, with 0 writes.
    CREATE_ONLY = "CREATE_ONLY"


@dataclass(frozen=True)
class TrackMapping:
    """What one track event does: ``settings.track_mappings[event]``."""

    fields: Mapping[str, str] = field(default_factory=dict)
    add_to_list_ids: tuple[int, ...] = ()
    external_activity: tuple[str, str] | None = None  # (extension, type)
    remove_from_list_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Settings:
    """``PardotSettings`` with the connection's defaults filled in: ``connection`` is a
    configured name and ``api_version`` is 3, 4 or 5, never unspecified."""

    connection: str = "default"
    api_version: int = 4
    lookup_field: str = ""
    use_user_id_as_lookup_value: bool = False
    campaign_id: str = ""
    strategy: str = ""
    dry_run: bool = False
    create_when_unmatched: bool = False
    account_id: str = ""
    track_mappings: Mapping[str, TrackMapping] = field(default_factory=dict)
    #: API v5: ``upsertLatestByEmail`` undeletes the latest prospect with the email when
    #: all of them are in the recycle bin (``secondaryDeletedSearch``), instead of creating.
    secondary_deleted_search: bool = True
    sync_mode: SyncMode = SyncMode.UPSERT
    #: Identify: lists the prospect is added to / removed from.
    list_ids_add: tuple[int, ...] = ()
    list_ids_remove: tuple[int, ...] = ()
    #: Skip a write that would change nothing the service last wrote (OUTCOME_UNCHANGED).
    skip_unchanged: bool = True
    #: Lower-case the email's domain; with ``normalize_email_local_part`` all of it.
    normalize_email: bool = True
    normalize_email_local_part: bool = False
    #: The connection's ``allow_resubscribe`` (server configuration, never a request's):
    #: writes that would re-subscribe a person who opted out go through.
    allow_resubscribe: bool = False


@dataclass(frozen=True)
class Event:
    """One identify or track call. ``traits`` are what identifies and describes the
    person (for a track call, ``context.traits``); ``properties`` belong to track."""

    kind: Literal["identify", "track"] = "identify"
    message_id: str = ""
    user_id: str = ""
    anonymous_id: str = ""
    traits: Mapping[str, Any] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)
    pardot_id: str = ""
    pardot_fid: str = ""
    name: str = ""
    properties: Mapping[str, Any] = field(default_factory=dict)
    timestamp: datetime | None = None

    @property
    def traits_path(self) -> str:
        """Where traits live in the request, for error messages that name the field."""
        return "traits" if self.kind == "identify" else "context.traits"

    @property
    def email(self) -> str:
        value = self.traits.get("email")
        return value.strip() if isinstance(value, str) else ""


@dataclass(frozen=True)
class Suppressed:
    """One write refused so that nobody is re-subscribed silently (``Suppression`` in
    the contract): a field (``is_do_not_email``…) or a list (``list_id``)."""

    reason: str
    field: str = ""
    list_id: int = 0


class Skipped(Exception):
    """Raised by a strategy's gateway when the call must write nothing (a sync mode
    forbids the write): the call answers OUTCOME_SKIPPED with ``reason`` as a warning.
    Not a ProspectSyncError: it is an outcome, not a failure."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class SyncResult:
    prospect: Prospect
    outcome: Outcome
    warnings: list[str] = field(default_factory=list)
    #: Writes refused to respect an opt-out (``Suppression`` in the contract).
    suppressed: list[Suppressed] = field(default_factory=list)

    @classmethod
    def of(cls, prospect: Prospect, warnings: list[str] | None = None) -> SyncResult:
        """The outcome follows from what the gateway returned: planned, new, not new,
        or — an upsert sent in a batch call, whose answer does not say (``created`` is
        None) — written either way, UPSERTED."""
        if prospect.planned:
            outcome = Outcome.PLANNED
        elif prospect.unchanged:
            outcome = Outcome.UNCHANGED
        elif prospect.created is None:
            outcome = Outcome.UPSERTED
        elif prospect.created:
            outcome = Outcome.CREATED
        else:
            outcome = Outcome.UPDATED
        return cls(prospect, outcome, list(warnings or []))


class ActionKind(enum.Enum):
    """Mirrors ``prospectsync.v1.TrackActionKind`` by name: what a mapping asks for."""

    WRITE_FIELDS = "WRITE_FIELDS"
    ADD_TO_LIST = "ADD_TO_LIST"
    EXTERNAL_ACTIVITY = "EXTERNAL_ACTIVITY"
    REMOVE_FROM_LIST = "REMOVE_FROM_LIST"


class ActionStatus(enum.Enum):
    """Mirrors ``prospectsync.v1.TrackActionStatus`` by name."""

    APPLIED = "APPLIED"
    #: Pardot already held the result (err 58, already a list member): success.
    ALREADY_APPLIED = "ALREADY_APPLIED"
    PLANNED = "PLANNED"
    #: Not done to respect an opt-out (the person opted out of the list).
    SUPPRESSED = "SUPPRESSED"


@dataclass(frozen=True)
class TrackAction:
    """One thing a track event did, or planned in a dry run. Only the member that
    belongs to ``kind`` is set."""

    kind: ActionKind
    status: ActionStatus
    fields: tuple[str, ...] = ()
    list_id: int = 0
    external_activity: tuple[str, str] | None = None  # (extension, type)


@dataclass
class TrackResult:
    """What a track call did: the prospect it resolved to (as identify would have),
    then each action of the mapping, in order."""

    sync: SyncResult
    actions: list[TrackAction] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        return self.sync.warnings


# --- Identity-map keys (what ``Gateway.identity`` is asked about) -------------------

#: Namespaces of the identity map: an email, a Salesforce fid, or a lookup field's value.
EMAIL = "email"
FID = "fid"


def field_namespace(lookup_field: str) -> str:
    return f"field:{lookup_field}"
