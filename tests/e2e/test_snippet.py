"""GetTrackingSnippet through the live server: the campaign a page gets (pi_campaign_id
over settings.campaign_id, Pardot's plugin offset as a setting), the tracker host from
the connection, the optional visitor link, and a page URL written by an attacker.
The snippet running in a real browser is tests/browser/."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import grpc
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clients.config import ConnectionConfig
from fakepardot import FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from server.config import ConfigError
from server.snippet import CampaignSource, render_snippet
from strategies.core.model import Settings
from support.service import Service, close_service, config_for, open_service

ACCOUNT = {"account_id": "12345", "campaign_id": "1001"}
PAGE = "https://www.example.com/pricing"


def request(page_url: str = PAGE, **values: Any) -> pb.GetTrackingSnippetRequest:
    email = values.pop("visitor_email", "")
    dnt = values.pop("do_not_track", False)
    return pb.GetTrackingSnippetRequest(
        page_url=page_url,
        settings=pb.PardotSettings(**{**ACCOUNT, **values}),
        visitor_email=email,
        do_not_track=dnt,
    )


def assigned(html: str, name: str) -> str:
    """The string the snippet assigns to window.<name>."""
    match = re.search(rf'window\.{name} = "([^"]*)";', html)
    assert match, f"{name} is not assigned in the snippet"
    return match[1]


async def snippet(
    service: Service, message: pb.GetTrackingSnippetRequest
) -> pb.GetTrackingSnippetResponse:
    return await service.stub.GetTrackingSnippet(message, timeout=10)


async def refused(service: Service, message: pb.GetTrackingSnippetRequest) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await snippet(service, message)
    return caught.value


def violations(error: grpc.aio.AioRpcError) -> list[str]:
    fields = []
    for detail in rpc_status.from_call(error).details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields.extend(v.field for v in bad.field_violations)
    return fields


@pytest.fixture
async def plugin_offset(fake: FakePardot, tmp_path: Path) -> AsyncIterator[Service]:
    """The default connection configured like Pardot's own plugin (piCId + 1000), its
    tracker on a custom domain."""
    config = config_for(
        fake,
        tmp_path / "state",
        default={"snippet_campaign_offset": 1000, "tracker_host": "go.example.com"},
    )
    opened = await open_service(config)
    yield opened
    await close_service(opened)


# --- the campaign ------------------------------------------------------------------------


async def test_without_pi_campaign_id_the_settings_campaign_is_used(service: Service) -> None:
    response = await snippet(service, request())
    assert (response.account_id, response.campaign_id) == ("12345", "1001")
    assert response.campaign_source == pb.CAMPAIGN_SOURCE_SETTINGS
    assert response.tracker_campaign_id == "1001"
    html = response.html
    assert html.startswith('<script type="text/javascript">') and html.endswith("</script>\n")
    assert assigned(html, "piAId") == "12345" and assigned(html, "piCId") == "1001"
    assert assigned(html, "piHostname") == "pi.pardot.com"
    assert 'script.src = "https://pi.pardot.com/pd.js";' in html
    assert 'window.addEventListener("load", loadTracker, false)' in html, "after the page loads"
    assert list(response.warnings) == []


async def test_the_page_url_pi_campaign_id_wins_and_the_response_says_so(service: Service) -> None:
    response = await snippet(service, request(f"{PAGE}?utm_source=x&pi_campaign_id=1002"))
    assert response.campaign_id == "1002"
    assert response.campaign_source == pb.CAMPAIGN_SOURCE_PAGE_URL
    assert assigned(response.html, "piCId") == "1002"


async def test_no_campaign_anywhere_leaves_pi_c_id_empty(service: Service) -> None:
    response = await snippet(service, request(campaign_id=""))
    assert response.campaign_source == pb.CAMPAIGN_SOURCE_NONE
    assert (response.campaign_id, assigned(response.html, "piCId")) == ("", "")


async def test_the_plugin_offset_and_tracker_host_are_connection_settings(
    plugin_offset: Service,
) -> None:
    response = await snippet(plugin_offset, request(f"{PAGE}?pi_campaign_id=1002"))
    assert (response.campaign_id, response.tracker_campaign_id) == ("1002", "2002")
    assert assigned(response.html, "piCId") == "2002"
    assert assigned(response.html, "piHostname") == "go.example.com"
    assert '"https://go.example.com/pd.js"' in response.html
    from_settings = await snippet(plugin_offset, request())
    assert assigned(from_settings.html, "piCId") == "2001"


# --- a hostile page URL --------------------------------------------------------------------

HOSTILE = [
    '1002"</script><script>alert(1)</script>',
    "1002';alert(1);//",
    "1002</script>",
    "\u0661\u0660\u0660\u0662",  # Arabic-Indic digits: str.isdigit() says yes, Pardot no
    "\uff11\uff10\uff10\uff12",  # fullwidth digits
    "-1002",
    "1002 ",
    "0x3EA",
    "1" * 40,
]


@pytest.mark.parametrize("value", HOSTILE)
async def test_a_hostile_pi_campaign_id_is_ignored_with_a_warning_and_never_echoed(
    service: Service, value: str
) -> None:
    response = await snippet(service, request(f"{PAGE}?pi_campaign_id={quote(value)}"))
    assert response.campaign_source == pb.CAMPAIGN_SOURCE_SETTINGS
    assert assigned(response.html, "piCId") == "1001"
    assert [w for w in response.warnings if "pi_campaign_id" in w and "ignored" in w]
    for text in (response.html, *response.warnings):
        assert value not in text and value.strip() not in text.replace("1001", "")
    plain = await snippet(service, request())
    assert response.html == plain.html, "nothing of the URL reached the script"


async def test_a_page_url_that_is_no_url_is_ignored(service: Service) -> None:
    response = await snippet(service, request("http://[::1/?pi_campaign_id=1002"))
    assert response.campaign_source == pb.CAMPAIGN_SOURCE_SETTINGS
    assert response.warnings


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=st.text(max_size=30),
    noise=st.text(max_size=30),
)
def test_whatever_the_url_holds_only_a_digits_campaign_reaches_the_script(
    value: str, noise: str
) -> None:
    page_url = f"{PAGE}?{urlencode({'x': noise, 'pi_campaign_id': value})}#{noise}"
    snippet = render_snippet(
        page_url=page_url,
        settings=Settings(account_id="12345", campaign_id="1001"),
        connection=ConnectionConfig(name="default"),
    )
    if re.fullmatch(r"[0-9]{1,18}", value):
        assert snippet.campaign_source is CampaignSource.PAGE_URL
        expected = str(int(value))
    else:
        assert snippet.campaign_source is CampaignSource.SETTINGS
        expected = "1001"
    assert assigned(snippet.html, "piCId") == expected
    lowered = snippet.html.lower()
    assert lowered.count("<script") == 1 and lowered.count("</script") == 1
    assert "<!--" not in lowered


# --- linking the visitor to an email -------------------------------------------------------


async def test_a_visitor_email_is_linked_after_pd_js_loads(service: Service) -> None:
    response = await snippet(service, request(visitor_email="ann+news@example.com"))
    assert response.links_visitor_email
    html = response.html
    assert "script.onload = linkVisitor;" in html
    assert "https://pi.pardot.com/analytics?account_id=12345" in html
    assert "pi_email=ann%2Bnews%40example.com" in html
    assert 'dnt === "1"' in html, "the browser's own Do Not Track is honoured"


async def test_do_not_track_means_no_link(service: Service) -> None:
    response = await snippet(service, request(visitor_email="ann@example.com", do_not_track=True))
    assert not response.links_visitor_email
    assert "ann" not in response.html and "analytics" not in response.html
    assert any("Do Not Track" in w for w in response.warnings)


# --- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"account_id": ""}, "settings.account_id"),
        ({"account_id": "12a45"}, "settings.account_id"),
        ({"account_id": "12345</script>"}, "settings.account_id"),
        ({"campaign_id": "10';x"}, "settings.campaign_id"),
        ({"visitor_email": "not an email"}, "visitor_email"),
    ],
)
async def test_what_the_caller_controls_must_be_well_formed(
    service: Service, values: dict[str, str], field: str
) -> None:
    error = await refused(service, request(**values))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == [field]


async def test_a_bad_settings_campaign_is_refused_even_when_the_page_names_one(
    service: Service,
) -> None:
    error = await refused(service, request(f"{PAGE}?pi_campaign_id=1002", campaign_id="x1"))
    assert violations(error) == ["settings.campaign_id"]


def test_a_tracker_scheme_that_is_neither_https_nor_http_is_refused_at_start(
    fake: FakePardot, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as caught:
        config_for(fake, tmp_path / "s", default={"tracker_scheme": "ftp"})
    assert "connections.default.tracker_scheme" in str(caught.value)


async def test_the_snippet_costs_no_pardot_call(service: Service, fake: FakePardot) -> None:
    await snippet(service, request(f"{PAGE}?pi_campaign_id=1002"))
    assert fake.state.calls == []


# --- the documentation -------------------------------------------------------------------


def documented_example() -> tuple[dict[str, Any], dict[str, Any]]:
    """The request and the response shown in docs/snippet.md's grpcurl example."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "snippet.md").read_text("utf-8")
    match = re.search(
        r"\$ grpcurl -plaintext -d '(?P<request>.*?)' \\\n\s*127\.0\.0\.1:50051 "
        r"prospectsync\.v1\.ProspectSync/GetTrackingSnippet\n(?P<response>\{.*?\n\})\n",
        text,
        re.DOTALL,
    )
    assert match, "docs/snippet.md shows a grpcurl GetTrackingSnippet call and its answer"
    return json.loads(match["request"]), json.loads(match["response"])


async def test_the_documented_example_is_what_the_server_answers(service: Service) -> None:
    request_json, shown = documented_example()
    documented = json_format.ParseDict(request_json, pb.GetTrackingSnippetRequest())
    response = await snippet(service, documented)
    assert json_format.MessageToDict(response, preserving_proto_field_name=True) == shown
