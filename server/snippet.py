"""Pardot's browser tracking snippet for one page: the ``<script>`` that sets ``piAId``,
``piCId`` and ``piHostname`` and loads ``pd.js`` from the connection's tracker host after
the page's load event — what Segment's browser integration injected (PARDOT_API.md,
"The browser side").

The campaign: the page URL's ``pi_campaign_id`` wins over ``settings.campaign_id``, and
``piCId`` is that id plus the connection's ``snippet_campaign_offset`` (0, or 1000 as
Pardot's own plugin renders it). With ``visitor_email`` the snippet also links Pardot's
visitor (its cookie on the tracker host) to that email, unless the visitor asked not to
be tracked (``do_not_track``, or the browser's own Do Not Track setting).

The page URL is attacker-controlled (anyone can link to a page with any query), so
ids must be digits, every value placed into the script is JSON-encoded with the
characters that could close the script or the string escaped, and a ``pi_campaign_id``
that is not a campaign id is ignored with a warning — never echoed: not in the
script, not in a warning, not in the log. This module never calls Pardot.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit

import structlog

from clients.config import ConnectionConfig
from strategies.core import pardot_facts as facts
from strategies.core.errors import InvalidArgument
from strategies.core.model import Settings
from strategies.validation import (
    CAMPAIGN_ID,
    MAX_URL_LENGTH,
    check_campaign_id,
    check_email,
    check_length,
)

log = structlog.get_logger("server.snippet")

#: How a page may load pd.js; "http" is for a tracker on loopback (docs/snippet.md).
#: piAId: a Pardot account id, digits only.
ACCOUNT_ID = re.compile(r"[0-9]{1,18}")

#: What could end the <script> element or a JS string early, as JSON escapes. With
#: ``ensure_ascii`` JSON already escapes U+2028/U+2029, which end a JS line.
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "'": "\\u0027"})


class CampaignSource(enum.Enum):
    """Mirrors ``prospectsync.v1.CampaignSource`` by name."""

    PAGE_URL = "PAGE_URL"
    SETTINGS = "SETTINGS"
    NONE = "NONE"


@dataclass(frozen=True)
class Snippet:
    html: str
    account_id: str
    campaign_id: str
    campaign_source: CampaignSource
    tracker_campaign_id: str
    links_visitor_email: bool
    warnings: list[str] = field(default_factory=list)


def render_snippet(
    *,
    page_url: str,
    settings: Settings,
    connection: ConnectionConfig,
    visitor_email: str = "",
    do_not_track: bool = False,
) -> Snippet:
    """The snippet for ``page_url``. Raises InvalidArgument for a request that cannot
    have one (no or bad ``settings.account_id``, a malformed ``settings.campaign_id``
    or ``visitor_email``) and FailedPrecondition for a tracker setting that is wrong."""
    # The configuration schema (clients.config) refused any other scheme or a negative
    # offset at start.
    scheme, offset = connection.tracker_scheme, connection.snippet_campaign_offset
    check_length(page_url, "page_url", MAX_URL_LENGTH)
    account_id = _account_id(settings.account_id)
    warnings: list[str] = []
    campaign_id, source = _campaign(page_url, settings, warnings)
    tracker_campaign_id = "" if not campaign_id else str(int(campaign_id) + offset)
    tracker = f"{scheme}://{connection.tracker_host}"

    link_url = ""
    if visitor_email:
        email = check_email(visitor_email, "visitor_email")
        if do_not_track:
            warnings.append("visitor_email not linked: the visitor sent Do Not Track")
        else:
            query = urlencode(
                {
                    "account_id": account_id,
                    "campaign_id": tracker_campaign_id,
                    facts.VISITOR_EMAIL_PARAM: email,
                }
            )
            link_url = f"{tracker}{facts.VISITOR_ANALYTICS_PATH}?{query}"

    html = _script(
        account_id=account_id,
        tracker_campaign_id=tracker_campaign_id,
        tracker_host=connection.tracker_host,
        script_url=tracker + facts.TRACKER_SCRIPT_PATH,
        link_url=link_url,
    )
    return Snippet(
        html=html,
        account_id=account_id,
        campaign_id=campaign_id,
        campaign_source=source,
        tracker_campaign_id=tracker_campaign_id,
        links_visitor_email=bool(link_url),
        warnings=warnings,
    )


def _account_id(value: str) -> str:
    if not value:
        raise InvalidArgument(
            "settings.account_id",
            "is required: it is the Pardot account id the snippet sets as piAId",
        )
    if not ACCOUNT_ID.fullmatch(value):
        raise InvalidArgument(
            "settings.account_id", f"must be a Pardot account id (digits only), not {value!r}"
        )
    return value


def _campaign(page_url: str, settings: Settings, warnings: list[str]) -> tuple[str, CampaignSource]:
    """The page URL's first ``pi_campaign_id`` when it is a campaign id; else
    ``settings.campaign_id``; else none. A hostile value is never repeated."""
    configured = check_campaign_id(settings.campaign_id)  # the caller's own: loud
    from_page = _page_campaign(page_url, warnings)
    if from_page:
        return str(int(from_page)), CampaignSource.PAGE_URL
    if configured:
        return str(int(configured)), CampaignSource.SETTINGS
    return "", CampaignSource.NONE


def _page_campaign(page_url: str, warnings: list[str]) -> str:
    if not page_url:
        return ""
    try:
        query = urlsplit(page_url).query
    except ValueError:
        warnings.append("page_url is not a URL: its pi_campaign_id, if any, was ignored")
        log.warning("snippet.page_url_ignored", length=len(page_url))
        return ""
    values = [
        v for k, v in parse_qsl(query, keep_blank_values=True) if k == facts.PAGE_CAMPAIGN_PARAM
    ]
    if not values or values[0] == "":
        return ""
    if CAMPAIGN_ID.fullmatch(values[0]):
        return values[0]
    warnings.append(
        f"page_url's {facts.PAGE_CAMPAIGN_PARAM} is not a Pardot campaign id (digits only): ignored"
    )
    log.warning("snippet.page_campaign_ignored", length=len(values[0]))
    return ""


def _js(value: str) -> str:
    """A JS string literal that is safe inside a <script> element of an HTML page."""
    return json.dumps(value, ensure_ascii=True).translate(_SCRIPT_SAFE)


def _script(
    *,
    account_id: str,
    tracker_campaign_id: str,
    tracker_host: str,
    script_url: str,
    link_url: str,
) -> str:
    """Every value goes through :func:`_js`, even those already checked."""
    lines = [
        '<script type="text/javascript">',
        f"window.piAId = {_js(account_id)};",
        f"window.piCId = {_js(tracker_campaign_id)};",
        f"window.piHostname = {_js(tracker_host)};",
        "(function () {",
    ]
    if link_url:
        # After pd.js ran, so a first-time visitor already has Pardot's cookie.
        lines += [
            "  function linkVisitor() {",
            "    var dnt = navigator.doNotTrack || window.doNotTrack || navigator.msDoNotTrack;",
            '    if (dnt === "1" || dnt === "yes") { return; }',
            "    var beacon = new Image(1, 1);",
            f"    beacon.src = {_js(link_url)} +",
            '      "&url=" + encodeURIComponent(window.location.href);',
            "  }",
        ]
    lines += [
        "  function loadTracker() {",
        '    var script = document.createElement("script");',
        '    script.type = "text/javascript";',
        "    script.async = true;",
        f"    script.src = {_js(script_url)};",
    ]
    if link_url:
        lines.append("    script.onload = linkVisitor;")
    lines += [
        "    (document.head || document.body).appendChild(script);",
        "  }",
        '  if (document.readyState === "complete") { loadTracker(); }',
        '  else { window.addEventListener("load", loadTracker, false); }',
        "})();",
        "</script>",
    ]
    return "\n".join(lines) + "\n"
