"""The paths of API v3 and v4 (PARDOT_API.md, "Requests"):
``/api/<object>/version/<3|4>/do/<operation>[/<key>/<value>…]``.

Request data that lands in a path is percent-encoded segment by segment, so an email
such as ``a+b@x.com`` reaches Pardot intact and ``x/../login`` cannot climb out of its
segment. Only constants choose the object and the operation; the host is never here.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from strategies.core import pardot_facts as facts


def encode_path_value(value: str | int) -> str:
    """One path segment: every reserved character encoded, so ``a+b@x.com`` reaches
    Pardot intact and ``x/../login`` stays inside its segment. A segment made only of
    dots would still be resolved as ``.``/``..`` by URL normalisation: encode those
    dots too."""
    encoded = quote(str(value), safe="")
    if encoded and set(encoded) == {"."}:
        return "%2E" * len(encoded)
    return encoded


def api_path(
    pardot_object: str, version: int, operation: str, path_params: Mapping[str, str | int]
) -> str:
    """``/api/<object>/version/<v>/do/<operation>/<key>/<value>…`` (PARDOT_API.md)."""
    if version not in facts.V3V4_API_VERSIONS:  # v5 has its own paths (clients.wire.v5)
        raise ValueError(f"Pardot API version must be 3 or 4, not {version!r}")
    path = facts.API_PATH.format(object=pardot_object, version=version, operation=operation)
    for key, value in path_params.items():
        if str(value) == "":
            raise ValueError(f"path parameter {key!r} is empty")
        path += f"/{quote(key, safe='')}/{encode_path_value(value)}"
    return path
