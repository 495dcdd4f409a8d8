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
    inject(kind, times=1, err_code=None, path_contains=None, delay_s=None)
        kinds: "html_502", "http_500", "empty_200", "err" (Pardot error for err_code),
        "delay" (wait delay_s, then answer), "drop" (close the connection, no response)
    expire_tokens()              every token and api key stops working (→ 184 / 1)
    reset()                      fresh accounts, default switches, no calls/faults/tokens

Observing: ``token_grants``, ``logins``, ``calls`` (the live list of RecordedCall: method,
path, raw_path, query, form, http_status, err_code, account, ts, fault — secrets shown as
"[REDACTED]"; ``calls.clear()`` works),
``daily_calls(account)``, ``in_flight(account)``. Data: ``add_prospect(account, **fields)``,
``prospects(account)``, ``get_prospect(account, id)``, ``delete_prospect(account, id)``,
``list_members(account, list_id)``, ``add_list_member(...)``, ``activities(account)``,
``configure_account(account, custom_fields=, campaigns=, lists=, external_activity_types=)``.

Fake's own choices where the spec is silent are listed in the module docstrings of
prospects.py, engagement.py, auth.py and constants.py ("(chosen)").
"""

from fakepardot.demo import DEMO, Demo
from fakepardot.model import RecordedCall
from fakepardot.server import FakePardot
from fakepardot.state import FakeState

__all__ = ["DEMO", "Demo", "FakePardot", "FakeState", "RecordedCall"]
