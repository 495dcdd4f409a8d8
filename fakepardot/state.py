"""Everything the fake knows and every switch a test can flip, behind one lock.

The fake's event loop and a test's own thread (or loop) both touch this object, so
every read-modify-write happens under ``self.lock`` and every helper returns copies.
The lock is only ever held for dictionary work, never across an ``await`` or a sleep:
holding it longer would stall the fake's loop and make latency switches lie.

Public surface (what tests and the /_fake/ control API use): the switch attributes,
``inject``, ``expire_tokens``, ``reset``, the counters, ``calls`` and the data helpers.
Methods starting with ``_`` are for the fake's request pipeline, called with the lock held.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from fakepardot import constants as c
from fakepardot import fields
from fakepardot import v5_switches as v5
from fakepardot.demo import DEMO
from fakepardot.model import FAULT_KINDS, Account, Fault, PardotFail, RecordedCall

UNKNOWN_CUSTOM_FIELD_MODES = ("ignore", "error")
V3_BATCH_ERROR_KEYS = ("index", "identifier")

#: A single prospect write's path (as decoded) and the key it names.
_SINGLE_WRITE = re.compile(
    r"/api/prospect/version/\d+/do/(?:create|update|upsert)/(?:email|id|fid)/(.+)"
)


class FakeState:
    """The fake Pardot's data and switches. Safe to use from any thread."""

    # API v5 switches (UNCONFIRMED behaviours; v5_switches.py says what each one means).
    v5_limit_status = v5.Choice(*v5.V5_LIMIT_STATUSES)
    v5_auth_errors = v5.Choice(*v5.V5_AUTH_ERRORS)
    v5_upsert_match = v5.Choice(*v5.V5_UPSERT_MATCHES)
    v5_upsert_fields_required = v5.Choice(False, True)
    v5_page_size = v5.PageSize()
    v5_null_clears = v5.Choice(True, False)
    #: UNCONFIRMED: a JSON array in a v4 batch entry (batch.py): "expand" | "refuse".
    batch_list_values = v5.Choice("expand", "refuse")
    v5_permanent_delete = v5.Choice(False, True)

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._ids = 100_000
        self._calls: list[RecordedCall] = []
        self._generation = 0
        self.reset()

    # --- switches ------------------------------------------------------------------

    @property
    def unknown_custom_field(self) -> str:
        """UNCONFIRMED in the spec: "ignore" (default) drops unknown custom field names
        from writes; "error" answers err 130."""
        return self._unknown_custom_field

    @unknown_custom_field.setter
    def unknown_custom_field(self, mode: str) -> None:
        if mode not in UNKNOWN_CUSTOM_FIELD_MODES:
            raise ValueError(f"unknown_custom_field must be one of {UNKNOWN_CUSTOM_FIELD_MODES}")
        self._unknown_custom_field = mode

    @property
    def v3_batch_error_keys(self) -> str:
        """UNCONFIRMED in the spec (PARDOT_API.md, "Batch"): how a v3 batch answer names
        a failed entry. "index" (default): its index in the request, as v4 does
        (RECORDED for v4); "identifier": the key the entry was sent under (its email or
        id, the v3 JSON key or the XML ``identifier`` attribute)."""
        return self._v3_batch_error_keys

    @v3_batch_error_keys.setter
    def v3_batch_error_keys(self, mode: str) -> None:
        if mode not in V3_BATCH_ERROR_KEYS:
            raise ValueError(f"v3_batch_error_keys must be one of {V3_BATCH_ERROR_KEYS}")
        self._v3_batch_error_keys = mode

    @property
    def bu_invalid_http_status(self) -> int:
        """UNCONFIRMED in the spec (PARDOT_API.md, "Authentication"): the HTTP status of
        err 201 (an unknown or inactive business unit), 400 (default: the status of its
        sibling header check, err 181) or 403."""
        return self._bu_invalid_http_status

    @bu_invalid_http_status.setter
    def bu_invalid_http_status(self, status: int) -> None:
        if status not in c.BU_INVALID_HTTP_STATUSES:
            raise ValueError(f"bu_invalid_http_status must be one of {c.BU_INVALID_HTTP_STATUSES}")
        self._bu_invalid_http_status = status

    @property
    def oauth_grant_types(self) -> list[str]:
        """The grant types the token endpoint takes (default: all three the service
        uses); any other is ``unsupported_grant_type``. A test's way to stand for an org
        or connected app that does not offer a flow."""
        return list(self._oauth_grant_types)

    @oauth_grant_types.setter
    def oauth_grant_types(self, grants: Iterable[str]) -> None:
        chosen = tuple(grants)
        if isinstance(grants, str) or not set(chosen) <= set(c.OAUTH_GRANTS):
            raise ValueError(f"oauth_grant_types must be a list of {c.OAUTH_GRANTS}")
        self._oauth_grant_types = chosen

    @property
    def list_field_resubscribes(self) -> bool:
        """UNCONFIRMED (PARDOT_API.md, "List membership": "A prospect write can also set
        ``list_<id>=1``"): what that does to a membership the prospect opted out of.
        False (default): it stays opted out, as Pardot keeps opt-outs elsewhere; True:
        subscribed again. The service never relies on either (it adds by
        ``listMembership``)."""
        return self._list_field_resubscribes

    @list_field_resubscribes.setter
    def list_field_resubscribes(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise ValueError("list_field_resubscribes must be true or false")
        with self.lock:
            self._list_field_resubscribes = value
            for acct in self._accounts.values():
                acct.list_field_resubscribes = value

    def switches(self) -> dict[str, Any]:
        """The switch values, as the control API shows and accepts them."""
        return {
            "latency_s": self.latency_s,
            "max_concurrency": self.max_concurrency,
            "daily_limit": self.daily_limit,
            "unknown_custom_field": self.unknown_custom_field,
            "legacy_retired": self.legacy_retired,
            "token_ttl_s": self.token_ttl_s,
            "api_key_ttl_s": self.api_key_ttl_s,
            "answers_held": self.answers_held,
            "upsert_fid_creates": self.upsert_fid_creates,
            "bu_invalid_http_status": self.bu_invalid_http_status,
            "oauth_grant_types": self.oauth_grant_types,
            "v3_batch_error_keys": self.v3_batch_error_keys,
            "batch_list_values": self.batch_list_values,
            "list_field_resubscribes": self.list_field_resubscribes,
            **{name: getattr(self, name) for name, _ in v5.DEFAULTS},
        }

    def set_switches(self, **values: Any) -> None:
        known = self.switches()
        for name in values:
            if name not in known:
                raise ValueError(f"unknown switch {name!r}; known: {sorted(known)}")
        for name, value in values.items():
            setattr(self, name, value)

    def reset(self) -> None:
        """Back to a fresh fake: default switches, demo accounts, no prospects, no
        tokens, no faults, no recorded calls, zeroed counters."""
        with self.lock:
            # Requests still running across a reset (a long "delay") belong to the
            # old world: their call records are dropped, their writes hit old accounts.
            self._generation += 1
            self.latency_s: float = 0.0
            self.max_concurrency: int = c.MAX_CONCURRENT_REQUESTS
            self.daily_limit: int | None = None
            self._unknown_custom_field = "ignore"
            self.legacy_retired: bool = False
            self.token_ttl_s: float | None = None
            self.api_key_ttl_s: float = c.API_KEY_TTL_S
            self.answers_held: bool = False
            # UNCONFIRMED in the spec (PARDOT_API.md, "Prospect operations, version 4"):
            # v4 upsert/fid with an fid nobody has and an email creates (True, as the
            # docs say) or answers err 77 (False).
            self.upsert_fid_creates: bool = True
            self._bu_invalid_http_status = c.BU_INVALID_HTTP_STATUSES[0]
            self._oauth_grant_types = c.OAUTH_GRANTS
            #: refresh token → when its latest grant ended (auth.py: overlapping grants).
            self._refresh_grants: dict[str, float] = {}
            self._v3_batch_error_keys = "index"
            self.batch_list_values = "expand"
            for name, default in v5.DEFAULTS:
                setattr(self, name, default)
            self._accounts = {
                name: _demo_account(name, version)
                for name, version in DEMO.account_versions.items()
            }
            self._business_units = dict(DEMO.business_units)
            self._list_field_resubscribes = False
            self._tokens: dict[str, float] = {}
            self._api_keys: dict[str, tuple[str, float]] = {}
            self._faults: list[Fault] = []
            self._calls.clear()  # in place: callers may hold the live list
            self._token_grants = 0
            self._logins = 0

    def inject(
        self,
        kind: str,
        times: int = 1,
        err_code: int | None = None,
        path_contains: str | None = None,
        delay_s: float | None = None,
        match: str | None = None,
        text: str | None = None,
    ) -> None:
        """Make the next ``times`` requests whose path contains ``path_contains`` (all
        requests when None; never /_fake/) fail as ``kind``:

        - "html_502": a proxy's HTML 502 page; "http_500": a bare 500;
        - "empty_200": HTTP 200 with an empty body;
        - "err": a Pardot error response for ``err_code`` with its usual HTTP status;
        - "delay": wait ``delay_s`` before answering (then answer normally);
        - "drop": close the connection without any response (nothing is processed);
        - "refuse": not a request but a prospect write fails: the next ``times`` batch
          entries or single writes (create/update/upsert) that name ``match`` (an email,
          without regard to case, an id or an fid: the entry's key, or its ``email``,
          ``id`` or ``fid``; a single write's path key) are refused with ``err_code``,
          as Pardot refuses a prospect it cannot save (err 85) or an email it will not
          take (err 4). In a batch that entry's error is ``text`` (else the code's usual
          text) and every other entry is applied; a single write answers as "err" does.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}")
        if kind in ("err", "refuse") and err_code is None:
            raise ValueError(f'kind "{kind}" needs err_code')
        if kind == "refuse" and not (match or "").strip():
            raise ValueError('kind "refuse" needs match (the email, id or fid to refuse)')
        if kind == "delay" and (delay_s is None or delay_s < 0):
            raise ValueError('kind "delay" needs delay_s >= 0')
        if times < 1:
            raise ValueError("times must be >= 1")
        with self.lock:
            self._faults.append(Fault(kind, times, err_code, path_contains, delay_s, match, text))

    def pending_faults(self) -> list[dict[str, Any]]:
        with self.lock:
            return [f.as_dict() for f in self._faults]

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()

    def expire_tokens(self) -> None:
        """Every issued OAuth token and legacy api key stops working: the next calls get
        err 184 (OAuth) or err 1 (legacy) until the client authenticates again."""
        with self.lock:
            self._tokens.clear()
            self._api_keys.clear()

    # --- counters and the call log ---------------------------------------------------

    @property
    def token_grants(self) -> int:
        """OAuth tokens issued (successful grants only)."""
        with self.lock:
            return self._token_grants

    @property
    def logins(self) -> int:
        """Successful legacy logins."""
        with self.lock:
            return self._logins

    @property
    def calls(self) -> list[RecordedCall]:
        """Every request answered so far (control API excluded), oldest first.

        The live list, so ``state.calls.clear()`` works; the fake only ever appends to
        it, which is atomic. Take ``list(state.calls)`` for a snapshot to iterate at
        leisure while requests are still running."""
        return self._calls

    def clear_calls(self) -> None:
        with self.lock:
            self._calls.clear()

    def daily_calls(self, account: str) -> int:
        """API calls counted against ``account``'s daily limit today."""
        with self.lock:
            acct = self._account(account)
            return acct.daily_count if acct.daily_day == _today() else 0

    def in_flight(self, account: str) -> int:
        with self.lock:
            return self._account(account).in_flight

    # --- data helpers (behind the client's back) -------------------------------------

    def configure_account(
        self,
        account: str,
        *,
        custom_fields: Iterable[str] | None = None,
        campaigns: Iterable[int] | None = None,
        lists: Iterable[int] | None = None,
        external_activity_types: Iterable[tuple[str, str]] | None = None,
    ) -> None:
        """Replace what an account offers. Lists that stay keep their members."""
        with self.lock:
            acct = self._account(account)
            if custom_fields is not None:
                acct.custom_fields = set(custom_fields)
            if campaigns is not None:
                acct.campaigns = list(campaigns)
            if lists is not None:
                acct.lists = {int(i): acct.lists.get(int(i), {}) for i in lists}
            if external_activity_types is not None:
                acct.activity_types = {(e, t) for e, t in external_activity_types}

    def add_prospect(self, account: str, **values: Any) -> dict[str, Any]:
        """Seed a prospect as if someone created it in Pardot's UI. Any field may be
        set, read-only ones included (``crm_lead_fid``, ``created_at``, ``is_archived``…);
        names that are not standard fields are stored as custom field values; ``id``
        picks the prospect's id (later ids are higher). Returns the prospect as the
        API renders it, ``id`` included."""
        with self.lock:
            acct = self._account(account)
            now = self._now()
            prospect_id = int(values.pop("id")) if "id" in values else self._next_id()
            if prospect_id in acct.prospects:
                raise ValueError(f"prospect id {prospect_id} already exists in {account!r}")
            self._ids = max(self._ids, prospect_id)
            record = fields.blank_record(prospect_id, now)
            if acct.campaigns:
                record["campaign_id"] = acct.campaigns[0]
            for name, value in values.items():
                if name in c.BOOLEAN_FIELDS:
                    record[name] = 1 if value and value not in ("0", "false") else None
                elif name == "password":
                    record["_password"] = value
                elif name in record:
                    record[name] = value
                else:
                    record["_custom"][name] = value
            acct.prospects.add(record)
            return fields.render(record)

    def prospects(self, account: str) -> list[dict[str, Any]]:
        """Every prospect of the account (archived ones included), oldest id first."""
        with self.lock:
            acct = self._account(account)
            return [fields.render(acct.prospects[i]) for i in sorted(acct.prospects)]

    def get_prospect(self, account: str, prospect_id: int) -> dict[str, Any] | None:
        with self.lock:
            record = self._account(account).prospects.get(int(prospect_id))
            return fields.render(record) if record else None

    def in_recycle_bin(self, account: str, prospect_id: int) -> bool | None:
        """Whether the prospect is in the recycle bin (v5 deleted, v3/v4 archived);
        None when the account has no such prospect at all (deleted for good)."""
        with self.lock:
            record = self._account(account).prospects.get(int(prospect_id))
            return None if record is None else bool(record.get("is_archived"))

    def delete_prospect(self, account: str, prospect_id: int) -> bool:
        """Delete a prospect behind the client's back; True if it existed."""
        with self.lock:
            acct = self._account(account)
            found = acct.prospects.remove(int(prospect_id)) is not None
            for members in acct.lists.values():
                members.pop(int(prospect_id), None)
            return found

    def list_members(self, account: str, list_id: int) -> list[int]:
        with self.lock:
            return sorted(self._account(account).lists.get(int(list_id), {}))

    def add_list_member(
        self, account: str, list_id: int, prospect_id: int, *, opted_out: bool = False
    ) -> None:
        """Make the prospect a member, as if added in Pardot's UI; ``opted_out``: a
        member who then opted out of the list (the membership stays)."""
        with self.lock:
            acct = self._account(account)
            members = acct.lists.setdefault(int(list_id), {})
            members[int(prospect_id)] = fields.membership(
                int(list_id), int(prospect_id), self._now()
            )
            members[int(prospect_id)]["opted_out"] = bool(opted_out)

    def activities(self, account: str) -> list[dict[str, Any]]:
        """External activities recorded through POST /api/v5/external-activities."""
        with self.lock:
            return [dict(a) for a in self._account(account).activities]

    # --- for the request pipeline (call with self.lock held) ---------------------------

    def _account(self, name: str) -> Account:
        try:
            return self._accounts[name]
        except KeyError:
            raise KeyError(f"no account {name!r}; known: {sorted(self._accounts)}") from None

    def _account_for_business_unit(self, business_unit_id: str) -> Account | None:
        name = self._business_units.get(business_unit_id)
        return self._accounts.get(name) if name else None

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _now(self) -> str:
        return _clock.now()

    def _take_fault(self, path: str) -> Fault | None:
        """The fault this request meets, consumed once. A "refuse" fault is met only by
        the single prospect write it names, as an "err" fault of its code."""
        single_write = _SINGLE_WRITE.fullmatch(path)
        names = (single_write.group(1),) if single_write else ()
        for fault in self._faults:
            if fault.kind == "refuse":
                if names and fault.refuses(path, names):
                    self._consume(fault)
                    return Fault("err", 1, fault.err_code, fault.path_contains)
            elif fault.matches(path):
                self._consume(fault)
                return fault
        return None

    def _take_refusal(self, path: str, names: Iterable[str]) -> PardotFail | None:
        """How Pardot refuses the batch entry at ``path`` naming ``names`` (its key and
        its email, id and fid), when a "refuse" fault names it; consumed once."""
        names = tuple(names)
        for fault in self._faults:
            if fault.refuses(path, names):
                self._consume(fault)
                return fault.failure()
        return None

    def _consume(self, fault: Fault) -> None:
        fault.times -= 1
        if fault.times <= 0:
            self._faults.remove(fault)

    def _issue_token(self) -> str:
        token = "00Dfake!" + secrets.token_urlsafe(32)
        self._tokens[token] = time.monotonic()
        self._token_grants += 1
        return token

    def _token_valid(self, token: str) -> bool:
        issued = self._tokens.get(token)
        if issued is None:
            return False
        return self.token_ttl_s is None or time.monotonic() - issued < self.token_ttl_s

    def _issue_api_key(self, email: str) -> str:
        api_key = secrets.token_hex(16)
        self._api_keys[api_key] = (email, time.monotonic())
        self._logins += 1
        return api_key

    def _api_key_user(self, api_key: str) -> str | None:
        """The legacy user's email for a live api key."""
        entry = self._api_keys.get(api_key)
        if entry is None or time.monotonic() - entry[1] >= self.api_key_ttl_s:
            return None
        return entry[0]

    def _admit(self, account: Account) -> None:
        """Count one API call against the account's limits or refuse it. Every
        authenticated call counts toward the daily budget, one refused with err 66
        included; a call refused with err 122 does not."""
        today = _today()
        if account.daily_day != today:
            account.daily_day, account.daily_count = today, 0
        if self.daily_limit is not None and account.daily_count >= self.daily_limit:
            raise PardotFail(c.ERR_DAILY_LIMIT)
        account.daily_count += 1
        if account.in_flight >= self.max_concurrency:
            raise PardotFail(c.ERR_CONCURRENCY)
        account.in_flight += 1

    def _release(self, account: Account) -> None:
        account.in_flight -= 1

    def _record(self, call: RecordedCall, generation: int) -> None:
        if generation == self._generation:
            self._calls.append(call)


def _today() -> date:
    return _clock.today()


class _SecondClock:
    """UTC wall-clock time to the second, formatted once per second. Every prospect
    write stamps ``updated_at`` and every call checks the day: formatting a datetime
    each time was a visible share of the fake's CPU under load."""

    def __init__(self) -> None:
        self._current: tuple[int, str, date] = (-1, "", date.min)

    def now(self) -> str:
        """``YYYY-MM-DD HH:MM:SS`` (``c.TIMESTAMP_FORMAT``), as Pardot stamps prospects."""
        return self._tick()[1]

    def today(self) -> date:
        return self._tick()[2]

    def _tick(self) -> tuple[int, str, date]:
        second = int(time.time())
        current = self._current
        if current[0] != second:
            moment = datetime.fromtimestamp(second, UTC)
            # One assignment: a reader on another thread never sees a torn value.
            current = self._current = (second, moment.strftime(c.TIMESTAMP_FORMAT), moment.date())
        return current


_clock = _SecondClock()


def _demo_account(name: str, version: int) -> Account:
    return Account(
        name=name,
        version=version,
        custom_fields=set(DEMO.custom_fields),
        campaigns=list(DEMO.campaign_ids),
        lists={list_id: {} for list_id in DEMO.list_ids},
        activity_types=set(DEMO.external_activity_types),
    )
