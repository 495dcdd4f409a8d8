"""fakepardot — a faithful Pardot API emulator: the embedded default behind ``make run``
and the test double behind every test of the service. Built from
../shared/PARDOT_API.md, error codes, texts and limits included. It must never talk to
anything but its own loopback clients, and never hold a real credential.

Use::

    from fakepardot import FakePardot, FakeState, DEMO

    with FakePardot() as fake:            # uvicorn on 127.0.0.1:<free port>, daemon thread
        fake.url, fake.token_url          # "http://127.0.0.1:PORT", url + "/services/oauth2/token"
        fake.state.add_prospect("v4", email="a@example.com", org_id="42")
        ...
    FakePardot().serve_forever(host="127.0.0.1", port=8750)   # foreground, for the CLI

Out of the box (``DEMO``): OAuth client ``demo-client``/``demo-client-secret`` with
refresh token ``demo-refresh-token`` or user ``demo@example.com``/``demo-password``;
business units ``0Uv000000000001CAA`` → account "v4", ``0Uv000000000003CAA`` → account
"v3"; legacy users ``legacy-v3@example.com`` / ``legacy-v4@example.com``, password
``demo-password``, user key ``0123456789abcdef0123456789abcdef``. Each account has custom
fields org_id, external_id, plan; campaigns 1001 (oldest), 1002; lists 501, 502;
external activity types ("ProspectSync", "Signed Up" | "Order Completed" | "Demo Requested").

Switches and faults (``fake.state``; the same over HTTP under ``/_fake/``, see control.py):

    latency_s = 0.0              seconds every call spends "in flight" (holds a concurrency slot)
    max_concurrency = 5          per account; one more in flight → err 66
    daily_limit = None           calls per account per (UTC) day; then err 122
    unknown_custom_field = "ignore" | "error"   unknown field names in writes: dropped, or err 130
    legacy_retired = False       True: legacy login and api_key calls answer err 199
    token_ttl_s = None           OAuth tokens expire after this many seconds (None: never)
    api_key_ttl_s = 3600         legacy api keys expire (err 1)
    answers_held = False         True: requests that got in flight wait, unanswered, until False
                                 (a test decides when Pardot answers: no timing in the test)
    upsert_fid_creates = True    v4 upsert/fid, unknown fid + email: creates (the docs) | err 77
    bu_invalid_http_status = 400 HTTP status of err 201 (unknown business unit): 400 | 403
    oauth_grant_types = [...]    grants the token endpoint takes; others: unsupported_grant_type
    v3_batch_error_keys = "index" | "identifier"   UNCONFIRMED: a v3 batch answer names a
                                 failed entry by its index (as v4, RECORDED) or by its key
    batch_list_values = "expand" | "refuse"   UNCONFIRMED: a JSON array in a batch entry is
                                 a multi-value field (``f_0``, ``f_1``…) or fails the entry
    inject(kind, times=1, err_code=None, path_contains=None, delay_s=None, match=None, text=None)
        kinds: "html_502", "http_500", "empty_200", "err" (Pardot error for err_code),
        "delay" (wait delay_s, then answer), "drop" (close the connection, no response),
        "refuse" (the batch entry or single write naming ``match``, an email/id/fid, fails
        with err_code and ``text``: the other entries of its batch are applied)
    expire_tokens()              every token and api key stops working (→ 184 / 1)
    reset()                      fresh accounts, default switches, no calls/faults/tokens

OAuth refusals come by cause (auth.py); two refresh_token grants of one refresh token
whose time in flight (``latency_s``) overlaps: the later is ``invalid_grant`` /
``token request is already being processed``, as Salesforce answers it.

Observing: ``token_grants``, ``logins``, ``calls`` (the live list of RecordedCall: method,
path, raw_path, query, form, http_status, err_code, account, ts, fault — secrets shown as
"[REDACTED]"; ``calls.clear()`` works),
``daily_calls(account)``, ``in_flight(account)``. Data: ``add_prospect(account, **fields)``,
``prospects(account)``, ``get_prospect(account, id)``, ``delete_prospect(account, id)``,
``list_members(account, list_id)``, ``add_list_member(...)``, ``activities(account)``,
``configure_account(account, custom_fields=, campaigns=, lists=, external_activity_types=)``.

API v5 prospects (v5.py; PARDOT_API.md, "API v5 (prospects)"). Same Bearer token and
``Pardot-Business-Unit-Id`` headers; bodies JSON with ``Content-Type: application/json``
(a form body → 400 code 151, none → 152, bad JSON or not an object → 150). The prospects
are the v3/v4 ones, in v5's camelCase names (v5_fields.py: ``firstName``, ``jobTitle``,
``campaignId``, ``isDoNotEmail``, …, custom fields ``org_id__c``/``external_id__c``/
``plan__c``, ``isDeleted``), typed (JSON booleans, integer ids/score/campaignId, ISO-8601
timestamps with offset, null when empty). Deleted = in the recycle bin = v3/v4's
archived state (v3/v4 read/id answers err 132, v4 read/email and query skip it). Emails
match exactly (case-sensitive). Every error is ``{"code": N, "message": "…"}``:

    POST   /api/v5/objects/prospects/do/upsertLatestByEmail
           {"matchEmail": str, "prospect": {camelCase fields}, "fields": [str],
            "secondaryDeletedSearch": bool (default false)}
           → 200 {the fields asked} (without "fields": {"id", "email"}). Updates the
           prospect with that email picked by v5_upsert_match; none live: with
           secondaryDeletedSearch (or in a business unit without AMPSEA, the "v3"
           account) undeletes + updates the latest deleted one; else creates (email:
           prospect.email, else matchEmail; prospect.email may change the email).
           400 code 153 no matchEmail/prospect; 4 bad email; 180 a name that is not a
           writable v5 field (v3 names, read-only, unknown custom); 50/56/38/61/154 a
           value of the wrong type; 13 "…missing: fields" if v5_upsert_fields_required.
    POST   /api/v5/objects/prospects/do/undelete  {"matchEmail": str, "fields": [str]}
           → 200 {fields} (default {"id", "email"}): undeletes the deleted prospect with
           that email picked by v5_upsert_match; none: 404 code 109.
    POST   /api/v5/objects/prospects?fields=a,b   {camelCase fields, "email" required}
           → 201 {fields} (default {"id", "email"}) + Location: <url>/api/v5/objects/
           prospects/<id>. AMPSEA: always creates; without: 400 code 54 if a live
           prospect has the email, undeletes + updates a deleted one that has it.
    GET    /api/v5/objects/prospects/<id>?fields=a,b[&deleted=true|all]  → 200 {fields}.
           No fields: 400 code 13 "One or more required parameters are missing: fields";
           unknown field 180; no such id 404 code 109 "The requested record was not
           found."; deleted: the same 404 plus "Pardot-Warning: 201;Record In Recycle Bin".
    PATCH  /api/v5/objects/prospects/<id>?fields=a,b  {fields to change; null clears}
           → 200 {fields}, or 204 without fields; deleted: 400 code 219; none: 404 109;
           without AMPSEA an email another prospect holds: 400 code 54.
    DELETE /api/v5/objects/prospects/<id>  → 204, empty: into the recycle bin (404 109
           + warning if already there). List memberships stay.
    GET    /api/v5/objects/prospects?fields=…[&email=…][&deleted=false|true|all]
           [&orderBy=id|createdAt|updatedAt|lastActivityAt [asc|desc]][&limit=1..1000]
           → 200 {"nextPageToken": str|null, "nextPageUrl": str|null, "values": [{fields}]};
           next page: ?nextPageToken=<token>[&fields=…] (anything else with it: 400 code
           5; a foreign token 400 code 211); limit > 1000: 400 code 23; default page size
           the v5_page_size switch (200).
    POST   /api/v5/objects/list-memberships?fields=…  {"listId", "prospectId", "optedOut"?}
           → 201 {fields} (default {"id"}); member already: 400 code 58; list 400 code 55;
           prospect none or deleted 400 code 3.
    Any other method on these paths: 405 code 60 "Invalid HTTP request method"; other
    paths under /api/v5/objects/: 404 code 2. Auth: 401 code 184 (token), 400 code 181
    "A required header is missing: Pardot-Business-Unit-Id header not found on request."
    (no business unit), code 201 with bu_invalid_http_status (unknown one); limits: err 66
    (a 6th call in flight) and 122 (daily) as v5 JSON with status v5_limit_status.

v5 switches (v5_switches.py says why each default): ``v5_limit_status = 429`` (| 400),
``v5_auth_errors = "json"`` (| "xml": 184/181 as v3/v4 XML, 400), ``v5_upsert_match =
"last_activity"`` (| "updated"), ``v5_upsert_fields_required = False``, ``v5_page_size =
200``. Real v5 reads come from a cache that may trail writes by up to 60 s: a client must
never rely on reading its own writes. The fake does not emulate that lag (it would make
every test racy): its reads always see the last write.

Fake's own choices where the spec is silent are listed in the module docstrings of
prospects.py, engagement.py, auth.py, constants.py and v5*.py ("(chosen)").
"""

from fakepardot.demo import DEMO, Demo
from fakepardot.model import RecordedCall
from fakepardot.server import FakePardot
from fakepardot.state import FakeState

__all__ = ["DEMO", "Demo", "FakePardot", "FakeState", "RecordedCall"]
