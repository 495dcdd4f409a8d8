"""KnownProspectIds stays bounded and forgets the least recently seen id first."""

from __future__ import annotations

from clients.known_ids import KnownProspectIds


def test_bounded_least_recently_seen_first() -> None:
    known = KnownProspectIds(capacity=3)
    for prospect_id in (1, 2, 3):
        known.add(prospect_id)
    known.add(1)  # seen again: now the most recent
    known.add(4)
    assert len(known) == 3
    assert 2 not in known
    assert all(i in known for i in (1, 3, 4))
