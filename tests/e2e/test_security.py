"""Issue 4, access end to end: TLS and mutual TLS on the gRPC port, caller tokens, and
hostile values that must never steer a request at Pardot (path injection).

Certificates come from a throwaway CA made in the test (the ``cryptography`` package):
no file of the repository holds a key."""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from fakepardot import FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc
from server.app import start_server
from server.config import CallerAuthConfig, ConfigError, ServiceConfig, TlsConfig, load_config
from support.service import config_for, identify

TOM = {"email": "tom@example.com"}
MINIMAL_CONNECTION = """
[connections.default]
business_unit_id = "0Uv000000000001CAA"
client_id = "id"
client_secret_env = "S"
refresh_token_env = "S"
"""
TOKEN = "caller-token-0123456789abcdef"
OTHER_TOKEN = "rotated-token-fedcba9876543210"


# --- a throwaway PKI -----------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    cert: bytes
    key: bytes


@dataclass(frozen=True)
class Pki:
    ca: Issued
    server: Issued
    client: Issued
    stranger: Issued  # a client certificate from another CA


def _name(common_name: str):  # -> x509.Name
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(common_name: str, issuer: Issued | None, *, server: bool = False) -> Issued:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    if issuer is None:
        signer, issuer_name = key, _name(common_name)
    else:
        signer = serialization.load_pem_private_key(issuer.key, password=None)
        issuer_name = x509.load_pem_x509_certificate(issuer.cert).subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    cert = builder.sign(signer, hashes.SHA256())
    return Issued(
        cert=cert.public_bytes(serialization.Encoding.PEM),
        key=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


@pytest.fixture(scope="module")
def pki() -> Pki:
    pytest.importorskip("cryptography", reason="the TLS tests need the cryptography package")
    ca = _issue("ProspectSync test CA", None)
    return Pki(
        ca=ca,
        server=_issue("localhost", ca, server=True),
        client=_issue("a caller", ca),
        stranger=_issue("a stranger", _issue("another CA", None)),
    )


def with_server(config: ServiceConfig, **server: object) -> ServiceConfig:
    return dataclasses.replace(config, server=dataclasses.replace(config.server, **server))


def tls(pki: Pki, tmp_path: Path, *, mutual: bool) -> TlsConfig:
    """``[server.tls]`` as the config file gives it, loaded the way the service loads it."""
    files = {"server.pem": pki.server.cert, "server.key": pki.server.key, "ca.pem": pki.ca.cert}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    (tmp_path / "server.key").chmod(0o600)
    table = '[server.tls]\ncert_file = "server.pem"\nkey_file = "server.key"\n'
    if mutual:
        table += 'client_ca_file = "ca.pem"\n'
    path = tmp_path / "tls.toml"
    path.write_text(table + MINIMAL_CONNECTION)
    path.chmod(0o600)
    config = load_config(path, environ={"S": "s"})
    assert config.server.tls is not None and config.warnings == ()
    return config.server.tls


@asynccontextmanager
async def running(config: ServiceConfig) -> AsyncIterator[str]:
    """The server on 127.0.0.1:0; yields its address."""
    server = await start_server(config, listen="127.0.0.1:0")
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        await server.stop(0)


def secure(target: str, pki: Pki, client: Issued | None = None) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.ca.cert,
        private_key=client.key if client else None,
        certificate_chain=client.cert if client else None,
    )
    return grpc.aio.secure_channel(target, credentials)


async def identify_over(channel: grpc.aio.Channel, **kwargs: object) -> pb.IdentifyResponse:
    stub = pb_grpc.ProspectSyncStub(channel)
    return await stub.Identify(identify(TOM, connection="v3"), timeout=10, **kwargs)


async def refused_code(channel: grpc.aio.Channel, **kwargs: object) -> grpc.StatusCode:
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await identify_over(channel, **kwargs)
    return caught.value.code()


# --- TLS -----------------------------------------------------------------------------


async def test_a_tls_client_is_served_and_a_plaintext_one_is_not(
    fake: FakePardot, tmp_path: Path, pki: Pki
) -> None:
    config = with_server(config_for(fake, tmp_path / "state"), tls=tls(pki, tmp_path, mutual=False))
    async with running(config) as target:
        async with secure(target, pki) as channel:
            reply = await identify_over(channel)
            assert reply.outcome == pb.OUTCOME_CREATED
        assert await refused_code(grpc.aio.insecure_channel(target)) == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_serves_only_clients_with_a_certificate_from_its_ca(
    fake: FakePardot, tmp_path: Path, pki: Pki
) -> None:
    config = with_server(config_for(fake, tmp_path / "state"), tls=tls(pki, tmp_path, mutual=True))
    async with running(config) as target:
        async with secure(target, pki, pki.client) as channel:
            assert (await identify_over(channel)).outcome == pb.OUTCOME_CREATED
        for client in (None, pki.stranger):
            code = await refused_code(secure(target, pki, client))
            assert code == grpc.StatusCode.UNAVAILABLE  # the handshake itself fails
    assert len(fake.state.prospects("v3")) == 1


def test_tls_files_load_relative_to_the_config_file(pki: Pki, tmp_path: Path) -> None:
    loaded = tls(pki, tmp_path, mutual=True)
    assert (loaded.cert_file, loaded.client_ca_file) == (
        tmp_path / "server.pem",
        tmp_path / "ca.pem",
    )
    assert (loaded.certificate_chain, loaded.private_key, loaded.client_ca) == (
        pki.server.cert,
        pki.server.key,
        pki.ca.cert,
    )
    assert pki.server.key.decode() not in repr(loaded)


def test_a_world_readable_key_is_a_warning_and_a_mismatched_one_an_error(
    pki: Pki, tmp_path: Path
) -> None:
    tls(pki, tmp_path, mutual=False)
    (tmp_path / "server.key").chmod(0o644)
    config = load_config(tmp_path / "tls.toml", environ={"S": "s"})
    assert [(w.event, w.fields["key"]) for w in config.warnings] == [
        ("config.secret_file_world_readable", "server.tls.key_file")
    ]
    (tmp_path / "server.key").write_bytes(pki.client.key)  # another certificate's key
    with pytest.raises(
        ConfigError, match=r"^server\.tls: cert_file and key_file must be"
    ) as caught:
        load_config(tmp_path / "tls.toml", environ={"S": "s"})
    assert "BEGIN" not in str(caught.value)


# --- caller authentication -----------------------------------------------------------


def reason(error: grpc.aio.AioRpcError) -> str:
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(info) for d in rpc_status.from_call(error).details)
    return info.reason


@pytest.fixture
async def guarded(fake: FakePardot, tmp_path: Path) -> AsyncIterator[str]:
    config = with_server(
        config_for(fake, tmp_path / "state"), auth=CallerAuthConfig((TOKEN, OTHER_TOKEN))
    )
    async with running(config) as target:
        yield target


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@pytest.mark.parametrize(
    "metadata",
    [(), bearer("not-the-token-0123456789"), bearer(TOKEN[:-1]), (("authorization", TOKEN),)],
    ids=["missing", "wrong", "prefix", "no-scheme"],
)
async def test_a_caller_without_an_accepted_token_is_unauthenticated(
    guarded: str, fake: FakePardot, metadata: tuple[tuple[str, str], ...]
) -> None:
    async with grpc.aio.insecure_channel(guarded) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await identify_over(channel, metadata=metadata)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason(caught.value) == "UNAUTHENTICATED"
    assert TOKEN not in caught.value.details()
    assert fake.state.calls == []


@pytest.mark.parametrize("token", [TOKEN, OTHER_TOKEN])
async def test_every_configured_token_is_accepted(
    guarded: str, fake: FakePardot, token: str
) -> None:
    async with grpc.aio.insecure_channel(guarded) as channel:
        reply = await identify_over(channel, metadata=bearer(token))
    assert reply.outcome == pb.OUTCOME_CREATED


async def test_health_is_open_and_reflection_needs_a_token(guarded: str) -> None:
    async with grpc.aio.insecure_channel(guarded) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

        reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
        ask = reflection_pb2.ServerReflectionRequest(list_services="")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in reflect.ServerReflectionInfo(iter([ask]), timeout=5):
                pass
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        answers = [
            a
            async for a in reflect.ServerReflectionInfo(
                iter([ask]), timeout=5, metadata=bearer(TOKEN)
            )
        ]
        services = {s.name for s in answers[0].list_services_response.service}
        assert "prospectsync.v1.ProspectSync" in services


async def test_an_unauthenticated_caller_never_gets_a_stored_response(guarded: str) -> None:
    request = identify(TOM, connection="v3", message_id="m-secret")
    async with grpc.aio.insecure_channel(guarded) as channel:
        stub = pb_grpc.ProspectSyncStub(channel)
        await stub.Identify(request, timeout=10, metadata=bearer(TOKEN))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Identify(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


# --- path injection ------------------------------------------------------------------


@pytest.mark.parametrize(
    "email",
    ["x/?format=xml&id=1#@example.com", "%2e%2e/login@example.com", "a/.b@example.com"],
)
async def test_a_valid_email_with_url_characters_stays_inside_its_path_segment(
    service, fake: FakePardot, email: str
) -> None:
    reply = await service.stub.Identify(identify({"email": email}, connection="v3"), timeout=10)
    assert reply.outcome == pb.OUTCOME_CREATED
    [call] = [c for c in fake.state.calls if c.path.startswith("/api/prospect/")]
    assert call.path == f"/api/prospect/version/3/do/upsert/email/{email}"  # decoded once
    assert call.raw_path.count("/") == call.path.count("/") - email.count("/")  # one segment
    assert call.query == {"format": "json"}  # nothing leaked into the query string
    assert [p["email"] for p in fake.state.prospects("v3")] == [email]
    assert not [c for c in fake.state.calls if "/login" in c.raw_path.split("/email/")[0]]


@pytest.mark.parametrize(
    ("traits", "options", "field"),
    [
        ({"email": "a@b.com/../../login"}, {"connection": "v3"}, "traits.email"),
        ({"email": "a@b.com"}, {"pardot_id": "1/../../login"}, "pardot.id"),
        ({"email": "a@b.com"}, {"pardot_fid": "../../../login/x"}, "pardot.fid"),
        (
            {"email": "a@b.com", "x": "1"},
            {"lookup_field": "x/../../login"},
            "settings.lookup_field",
        ),
        (
            {"email": "a@b.com", "org_id": "1", "org_id/../x": "1"},
            {"lookup_field": "org_id"},
            "traits.org_id/../x",
        ),
    ],
)
async def test_a_value_that_would_traverse_is_refused_before_pardot(
    service, fake: FakePardot, traits: dict, options: dict, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.stub.Identify(identify(traits, **options), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(field)
    assert not [c for c in fake.state.calls if c.path.startswith("/api/")]
