"""The opt-out guard: no write of a call may silently re-subscribe a person.

A prospect write that carries ``is_do_not_email`` or ``opted_out`` with any value that
is not true (false, 0, an empty value that clears the field) is sent without that
field, and the response says so (``Suppressed(field=…)``). Why "not true" rather than
"true → false": the current value is unknown without a read, and leaving out a false
for someone who never opted out changes nothing, while for someone who did it is the
re-subscribe we must refuse. So the guard costs no call. True values pass: opting a
person out is always allowed.

The guard is left out of the chain when the connection sets ``allow_resubscribe``
(``strategies.policies.policies_for``). A list membership the person opted out of is
the list verbs' concern (``strategies.track.run_track``), not this policy's: list
memberships are never added through a prospect write's ``list_<id>=1``.

Decision logic only: no call, no state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, TypeVar

from strategies.base import ProspectKey, WriteFn, WriteOperation
from strategies.core.model import Fields, Prospect, Suppressed

_V = TypeVar("_V")

#: The prospect fields whose false would re-subscribe (PARDOT_API.md, "Prospect
#: fields": ``is_do_not_email`` is writable; ``opted_out`` is read-only there, but a
#: write naming it is screened all the same, so no path can send it).
GUARDED_FIELDS: Final = ("is_do_not_email", "opted_out")
#: The values Pardot reads as true for a boolean field (fakepardot.fields' rule).
TRUE_VALUES: Final = frozenset({"1", "true"})
#: What the response says of a field left out.
REASON: Final = (
    "left out of the write: a value that is not true could re-subscribe a person who "
    "opted out; the connection's allow_resubscribe = true lets it through"
)


def is_true(value: object) -> bool:
    """Whether Pardot reads ``value`` as true. Anything else (a multi-value, an empty
    value, "0", "false", "no") is not an opt-out, so the guard leaves it out."""
    return isinstance(value, str) and value.strip().lower() in TRUE_VALUES


def screened(fields: Mapping[str, _V]) -> tuple[dict[str, _V], tuple[str, ...]]:
    """``fields`` without the guarded fields that are not true, and those fields' names."""
    left_out = tuple(
        name for name in GUARDED_FIELDS if name in fields and not is_true(fields[name])
    )
    return {k: v for k, v in fields.items() if k not in left_out}, left_out


class OptOutGuard:
    """A :class:`strategies.base.WritePolicy`: leaves out of every write the
    guarded fields that are not true, and appends one ``Suppressed`` per field to
    ``suppressed`` (once per call, however many writes carried it)."""

    def __init__(self, suppressed: list[Suppressed]) -> None:
        self._suppressed = suppressed

    async def write(
        self,
        operation: WriteOperation,
        key: ProspectKey,
        fields: Fields,
        *,
        need_answer: bool,
        then: WriteFn,
    ) -> Prospect:
        kept, left_out = screened(fields)
        for name in left_out:
            entry = Suppressed(reason=REASON, field=name)
            if entry not in self._suppressed:
                self._suppressed.append(entry)
        return await then(operation, key, kept if left_out else fields, need_answer)
