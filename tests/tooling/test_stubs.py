"""`make stubs LANG=…` generates each language's stubs from the same contract, with
local plugins only. A language whose plugins this machine lacks is skipped with what to
install (``make test`` installs them on CI or as root); Node's come from npm and must
run on CI."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from support.make import IN_A_VENV, REPO, make_command

TS_PROTO = REPO / "tests" / "node" / "node_modules" / ".bin" / "protoc-gen-ts_proto"
#: Each language's plugins, and how to get them.
PLUGINS = {
    "node": ([str(TS_PROTO)], "make node-deps"),
    "go": (["protoc-gen-go", "protoc-gen-go-grpc"], "apt-get install protoc-gen-go{,-grpc}"),
    "cpp": (["protoc", "grpc_cpp_plugin"], "apt-get install protobuf-compiler{,-grpc}"),
}
#: Files each language must get, and a line each must hold.
EXPECTED = {
    "node": {
        "prospectsync/v1/prospect_sync.ts": "export const ProspectSyncClient = makeGeneric",
        "google/rpc/error_details.ts": "export interface ErrorInfo {",
        "google/rpc/status.ts": "export interface Status {",
    },
    "go": {
        "prospectsync/v1/prospect_sync.pb.go": "package prospectsyncv1",
        "prospectsync/v1/prospect_sync_grpc.pb.go": "func NewProspectSyncClient(cc grpc.",
    },
    "cpp": {
        "prospectsync/v1/prospect_sync.pb.h": "namespace prospectsync {",
        "prospectsync/v1/prospect_sync.grpc.pb.h": "class ProspectSync final {",
        "google/rpc/error_details.pb.h": "class ErrorInfo final",
    },
}


def missing_plugins(lang: str) -> list[str]:
    tools, _ = PLUGINS[lang]
    return [t for t in tools if not (Path(t).is_file() if "/" in t else shutil.which(t))]


@pytest.mark.skipif(not IN_A_VENV, reason="runs make with the suite's virtualenv")
@pytest.mark.parametrize("lang", sorted(PLUGINS))
def test_make_stubs_generates_the_language(lang: str, tmp_path: Path) -> None:
    if missing := missing_plugins(lang):
        if lang == "node" and os.environ.get("CI"):
            pytest.fail(f"CI must generate the Node stubs; missing {missing}: make node-deps")
        pytest.skip(f"make stubs LANG={lang} needs {' '.join(missing)}: {PLUGINS[lang][1]}")

    done = subprocess.run(
        make_command("stubs", f"LANG={lang}", f"STUBS_DIR={tmp_path}"),
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    for name, line in EXPECTED[lang].items():
        generated = tmp_path / lang / name
        assert generated.is_file(), f"{generated} missing; made: {sorted(tmp_path.rglob('*'))}"
        assert line in generated.read_text(), f"{name} lacks {line!r}"


@pytest.mark.skipif(not IN_A_VENV, reason="runs make with the suite's virtualenv")
def test_make_stubs_without_a_language_says_how(tmp_path: Path) -> None:
    # The environment's LANG is the locale, never a language to generate.
    env = {**os.environ, "LANG": "C.UTF-8"}
    done = subprocess.run(
        make_command("stubs", f"STUBS_DIR={tmp_path}"),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode != 0
    assert "usage: make stubs LANG=node|go|cpp" in done.stdout
