"""Issue 5's browser test: the snippet the live server renders, embedded in a page
served on loopback, run by headless Chromium against a loopback stub tracker."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from .loopback import (
    ACCOUNT_ID,
    DEFAULT_CAMPAIGN,
    VISITOR_COOKIE,
    Browser,
    Loopback,
    Site,
    pardot_globals,
)


@pytest.mark.parametrize(
    ("query", "campaign"),
    [("", DEFAULT_CAMPAIGN), ("?pi_campaign_id=1002", "1002")],
    ids=["settings-campaign", "page-campaign"],
)
async def test_pd_js_is_fetched_after_load_and_sees_the_ids(
    browser: Browser, site: tuple[Site, Loopback], tracker: Loopback, query: str, campaign: str
) -> None:
    page, server = site
    dom = await browser.dom(f"{server.origin}/landing{query}")

    assert page.errors == []
    assert "/pd.js" in tracker.paths(), "the browser fetched pd.js from the tracker host"
    assert pardot_globals(dom) == {
        "piAId": ACCOUNT_ID,
        "piCId": campaign,
        "piHostname": f"127.0.0.1:{tracker.port}",
        "readyState": "complete",
    }
    assert "/analytics" not in tracker.paths(), "no visitor to link"


async def test_a_hostile_page_url_changes_nothing_in_the_browser(
    browser: Browser, site: tuple[Site, Loopback], tracker: Loopback
) -> None:
    _, server = site
    hostile = quote('1002"></script><img id="pwned" src="x"><script>')
    dom = await browser.dom(f"{server.origin}/landing?pi_campaign_id={hostile}")
    assert pardot_globals(dom) == {
        "piAId": ACCOUNT_ID,
        "piCId": DEFAULT_CAMPAIGN,
        "piHostname": f"127.0.0.1:{tracker.port}",
        "readyState": "complete",
    }
    assert "pwned" not in dom
    assert tracker.paths().count("/pd.js") == 1


async def test_a_logged_in_visitor_is_linked_with_the_visitor_cookie(
    browser: Browser, site: tuple[Site, Loopback], tracker: Loopback
) -> None:
    page, server = site
    page.visitor_email = "ann+news@example.com"
    await browser.dom(f"{server.origin}/landing?pi_campaign_id=1002")

    assert tracker.paths()[:2] == ["/pd.js", "/analytics"], "linked after pd.js ran"
    [link] = [s for s in tracker.seen if s.path == "/analytics"]
    assert link.query["pi_email"] == ["ann+news@example.com"]
    assert link.query["account_id"] == [ACCOUNT_ID] and link.query["campaign_id"] == ["1002"]
    assert link.query["url"] == [f"{server.origin}/landing?pi_campaign_id=1002"]
    assert VISITOR_COOKIE in link.headers.get("Cookie", ""), "the visitor cookie went along"


@pytest.mark.parametrize("site_passes_dnt", [True, False], ids=["server-side", "in-browser"])
async def test_do_not_track_means_the_visitor_is_never_linked(
    browser: Browser,
    site: tuple[Site, Loopback],
    tracker: Loopback,
    site_passes_dnt: bool,
) -> None:
    page, server = site
    page.visitor_email = "ann@example.com"
    page.honours_dnt_header = site_passes_dnt
    dom = await browser.dom(f"{server.origin}/landing", do_not_track=True)

    [landing] = [s for s in server.seen if s.path == "/landing"]
    assert landing.headers.get("DNT") == "1", "the browser sent Do Not Track"
    assert pardot_globals(dom) is not None, "anonymous tracking still runs"
    assert "/pd.js" in tracker.paths() and "/analytics" not in tracker.paths()
