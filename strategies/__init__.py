"""Strategies decide how an event becomes Pardot calls. Importing the package registers
every strategy with ``strategies.registry.REGISTRY`` (selection order: DESIGN.md)."""

from strategies import (  # noqa: F401  (each module registers its strategy)
    create_v4,
    email_v3,
    id_fid_v4,
    lookup_field_v4,
    user_id_lookup_v4,
)
