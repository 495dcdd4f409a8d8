"""Every built-in strategy, registered: ``from strategies.catalog import REGISTRY``.

Selection, highest priority first (``settings.strategy`` forces one by name):

| strategy | priority | picked when |
| --- | --- | --- |
| EmailV3 | 100 | API v3: the email is the unique key (one upsert) |
| EmailV5 | 95 | API v5, no ``pardot.id``/``fid``, no lookup field (one upsertLatestByEmail) |
| IdFidV4 | 90 | API v4 or v5 with ``pardot.id`` or ``pardot.fid`` (v5: an id only) |
| UserIdLookupV4 | 80 | API v4/v5, ``settings.lookup_field`` and ``use_user_id_as_lookup_value`` |
| LookupFieldV4 | 70 | API v4 or v5 and ``settings.lookup_field`` (the trait holds the value) |
| CreateV4 | 10 | API v4 and ``settings.create_when_unmatched`` (v5: only when forced) |

EmailV5 requires ``traits.email``: a v5 call with no key at all is told so by it. On v5
an email is always matched (upsertLatestByEmail), so CreateV4 runs there only when
``settings.strategy`` forces it.
Nothing matches (v4 without any of these) → FAILED_PRECONDITION ``NO_MATCHING_STRATEGY``.
Adding a strategy: its module (which registers itself with a priority), its tests, and
its line here and in the table above.
"""

from strategies import (  # noqa: F401  (each module registers its strategy)
    create_v4,
    email_v3,
    email_v5,
    id_fid_v4,
    lookup_field_v4,
    user_id_lookup_v4,
)
from strategies.registry import REGISTRY

__all__ = ["REGISTRY"]
