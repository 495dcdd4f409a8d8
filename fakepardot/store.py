"""One account's prospects, by id, with indexes on email and Salesforce id (fid).

Why: a benchmark run writes tens of thousands of prospects, and a lookup by email that
walks every prospect made the fake spend more CPU per Identify than the service under
test. Lookups here cost the same at 10 or 100,000 prospects, and answer exactly what a
walk over the prospects in insertion order would have answered (order included: v3
takes the first match).

The indexes stay right only if every write of a prospect's ``email`` goes through
``set_email`` and every insertion or removal through ``add``/``remove``; fids are
read-only in Pardot, so they are indexed once, when the prospect is added. Plain data:
no locking (``state`` guards it), no validation, no rendering.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, ValuesView
from typing import Any, TypeVar, overload

#: A stored prospect: every output field (None when empty), custom field values, and
#: the write-only ``password`` when one was set.
ProspectRecord = dict[str, Any]
_T = TypeVar("_T")

#: The stored fields a fid lookup matches on.
FID_FIELDS = ("crm_lead_fid", "crm_contact_fid")
#: A 15-character fid names the same record as its 18-character form.
_FID_KEY_LENGTH = 15


class ProspectStore(Mapping[int, ProspectRecord]):
    """Prospect id → record, oldest insertion first, plus email and fid indexes."""

    def __init__(self) -> None:
        self._records: dict[int, ProspectRecord] = {}
        self._position: dict[int, int] = {}  # id → insertion number: the walk's order
        self._inserted = 0
        self._by_email: dict[str, dict[int, ProspectRecord]] = {}
        self._by_fid: dict[str, dict[int, ProspectRecord]] = {}

    # --- Mapping (what a dict of records offered) ----------------------------------------

    def __getitem__(self, prospect_id: int) -> ProspectRecord:
        return self._records[prospect_id]

    def __iter__(self) -> Iterator[int]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, prospect_id: object) -> bool:
        return prospect_id in self._records

    # Mapping.get's own overloads; the dict's get, since Mapping's goes through a KeyError.
    @overload
    def get(self, prospect_id: int, /) -> ProspectRecord | None: ...
    @overload
    def get(self, prospect_id: int, default: ProspectRecord | _T, /) -> ProspectRecord | _T: ...
    def get(self, prospect_id: int, default: object = None) -> object:
        return self._records.get(prospect_id, default)

    def values(self) -> ValuesView[ProspectRecord]:
        return self._records.values()

    # --- writes ----------------------------------------------------------------------

    def add(self, record: ProspectRecord) -> None:
        """Insert a record under ``record["id"]`` (which must be free), indexed by its
        current email and fids."""
        prospect_id = record["id"]
        self._records[prospect_id] = record
        self._inserted += 1
        self._position[prospect_id] = self._inserted
        self._join(self._by_email, _email_key(record.get("email")), record)
        for key in _fid_keys(record):
            self._join(self._by_fid, key, record)

    def remove(self, prospect_id: int) -> ProspectRecord | None:
        """Take a record out (None if there was none)."""
        record = self._records.pop(prospect_id, None)
        if record is None:
            return None
        del self._position[prospect_id]
        self._leave(self._by_email, _email_key(record.get("email")), prospect_id)
        for key in _fid_keys(record):
            self._leave(self._by_fid, key, prospect_id)
        return record

    def set_email(self, record: ProspectRecord, email: Any) -> None:
        """Write ``record["email"]``, moving the record between email buckets."""
        old, new = _email_key(record.get("email")), _email_key(email)
        record["email"] = email
        if old != new and record["id"] in self._records:
            self._leave(self._by_email, old, record["id"])
            self._join(self._by_email, new, record)

    # --- lookups ---------------------------------------------------------------------

    def with_email(self, email: str) -> list[ProspectRecord]:
        """Every record whose email equals ``email`` regardless of case, oldest first
        (records with no email match "")."""
        bucket = self._by_email.get(email.lower())
        return list(bucket.values()) if bucket else []

    def with_fid_prefix(self, fid: str) -> list[ProspectRecord]:
        """Records that may match ``fid``: a stored fid starts with its first 15
        characters. Oldest first; the caller applies the exact rule."""
        bucket = self._by_fid.get(fid[:_FID_KEY_LENGTH])
        return list(bucket.values()) if bucket else []

    # --- buckets ---------------------------------------------------------------------

    def _join(
        self, index: dict[str, dict[int, ProspectRecord]], key: str, record: ProspectRecord
    ) -> None:
        bucket = index.setdefault(key, {})
        prospect_id = record["id"]
        if bucket and self._position[next(reversed(bucket))] > self._position[prospect_id]:
            # An older record joins (its email changed): keep the walk's order.
            bucket[prospect_id] = record
            ordered = sorted(bucket.items(), key=lambda item: self._position[item[0]])
            bucket.clear()
            bucket.update(ordered)
        else:
            bucket[prospect_id] = record

    @staticmethod
    def _leave(index: dict[str, dict[int, ProspectRecord]], key: str, prospect_id: int) -> None:
        bucket = index.get(key)
        if bucket is not None:
            bucket.pop(prospect_id, None)
            if not bucket:
                del index[key]


def _fid_keys(record: ProspectRecord) -> Iterator[str]:
    """The fid index keys of ``record``: the first 15 characters of each fid it holds."""
    for name in FID_FIELDS:
        fid = record.get(name)
        if fid and isinstance(fid, str):
            yield fid[:_FID_KEY_LENGTH]


def _email_key(email: Any) -> str:
    """How a lookup finds an email: lower case; no email at all is ""."""
    return str(email).lower() if email else ""
