"""What a track event does in Pardot: the decision logic behind ``Track``.

A track call is resolved to its prospect exactly as an identify would be, by the same
registry and strategies, from the identity the event carries: ``pardot.id``/``fid``,
``user_id``, and the email and lookup-field value found in ``context.traits`` or else in
``properties``. Where identify would create the prospect, so does track: an event is
never lost for want of an earlier identify. Then ``settings.track_mappings[event]``
says what the event does: mapped properties written to prospect fields, list
memberships added, an external activity recorded.

Everything a mapping asks for is checked by :func:`plan_track` before any Pardot call,
so a bad mapping is INVALID_ARGUMENT with nothing half-done; then, before the prospect
is written, :func:`run_track` asks the gateway whether the account has the mapping's
lists (a list read, remembered per connection) and whether Pardot refused its external
activity type lately, so that an unknown list or a refused type fails with nothing
written. (Pardot cannot be asked which activity types exist: the first refusal of a
type still comes after the prospect write.) Like a strategy, this
module never builds a URL, sleeps, retries or locks: it asks a :class:`TrackGateway`,
and the caller of :func:`run_track` decides how the strategy runs (the server holds
its per-person lock around it).
"""

from __future__ import annotations

import enum
import json
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from strategies.base import Gateway, GatewayWrapper, ProspectKey, WriteOperation
from strategies.core.errors import (
    UNKNOWN_PARDOT_ERROR,
    FailedPrecondition,
    InvalidArgument,
    PardotError,
    ProspectSyncError,
    Reason,
)
from strategies.core.model import (
    ActionKind,
    ActionStatus,
    Event,
    Fields,
    FieldValue,
    Prospect,
    Settings,
    Suppressed,
    SyncResult,
    TrackAction,
    TrackMapping,
    TrackResult,
)
from strategies.core.pardot_facts import (
    ERR_INVALID_LIST,
    EXTERNAL_ACTIVITY_VALUE_MAX,
    READ_ONLY_FIELDS,
)
from strategies.fields import check_multi_value_names, field_value, format_value
from strategies.unchanged import track_outcome
from strategies.validation import check_email, check_field_id

#: Runs the registry's strategy for the event through the gateway it is given.
Resolve = Callable[[Gateway], Awaitable[SyncResult]]

#: The API versions on which ``list_<id>=0`` on a prospect write removes a membership
#: (PARDOT_API.md, "List membership"); v5 writes have no such field.
LIST_FIELDS_VERSIONS = frozenset({3, 4})
#: Why a list add was not made (``Suppressed.reason``).
LIST_OPTED_OUT = (
    "not re-added: the person opted out of this list; the connection's "
    "allow_resubscribe = true lets it through"
)


class ListChange(enum.Enum):
    """What a list verb did (``TrackGateway.add_to_list`` / ``remove_from_list``)."""

    ADDED = "ADDED"
    #: Already a member (err 58, and the membership is not opted out).
    ALREADY_MEMBER = "ALREADY_MEMBER"
    #: Already a member, opted out of the list: left so (no ``resubscribe``).
    OPTED_OUT = "OPTED_OUT"
    #: Was opted out of the list; now subscribed again (``resubscribe``).
    RESUBSCRIBED = "RESUBSCRIBED"
    REMOVED = "REMOVED"
    NOT_A_MEMBER = "NOT_A_MEMBER"
    #: Dry run: only planned.
    PLANNED = "PLANNED"


def list_field(list_id: int) -> str:
    """The prospect field that sets a membership on v3/v4 writes (``list_<id>``)."""
    return f"list_{list_id}"


class TrackGateway(Gateway):
    """The :class:`~strategies.base.Gateway` plus what track mappings need.
    ``clients.gateway.PardotGateway`` implements it over HTTP; the unit tests in
    memory."""

    @abstractmethod
    async def add_to_list(
        self, prospect_id: int | None, list_id: int, *, resubscribe: bool
    ) -> ListChange:
        """Add the prospect to the list. Already a member (err 58): one read of the
        membership tells ALREADY_MEMBER from OPTED_OUT, and with ``resubscribe`` an
        opted-out membership is subscribed again (RESUBSCRIBED). ``prospect_id`` is
        None only in a dry run, for a prospect not created yet (PLANNED)."""

    @abstractmethod
    async def remove_from_list(self, prospect_id: int | None, list_id: int) -> ListChange:
        """Take the prospect off the list by a call of its own: REMOVED, NOT_A_MEMBER
        (success too), PLANNED in a dry run. v3/v4 callers rather carry
        ``list_<id>=0`` on the prospect write they make anyway."""

    @abstractmethod
    async def unknown_lists(self, list_ids: Sequence[int]) -> tuple[int, ...]:
        """The ids among ``list_ids`` that name no list of the account, in their order
        (a read: made in a dry run too)."""

    @abstractmethod
    def refused_external_activity(self, extension: str, activity_type: str) -> PardotError | None:
        """Pardot's refusal of this activity type, if this connection met one lately;
        makes no call (Pardot has no read of activity types)."""

    @abstractmethod
    def check_external_activities(self) -> None:
        """Raises FailedPrecondition when this connection cannot record activities."""

    @abstractmethod
    async def record_external_activity(
        self, extension: str, activity_type: str, value: str, email: str
    ) -> bool:
        """True when recorded; False when only planned (dry run)."""


@dataclass(frozen=True)
class TrackPlan:
    """One event's mapping, checked: exactly what will be sent, and nothing else."""

    event: str
    #: Pardot field → value, from the properties the event carries.
    fields: Fields = field(default_factory=dict)
    list_ids: tuple[int, ...] = ()
    external_activity: tuple[str, str] | None = None  # (extension, type)
    warnings: tuple[str, ...] = ()
    #: Lists the prospect is taken off.
    remove_list_ids: tuple[int, ...] = ()
    #: Where ``list_ids`` / ``remove_list_ids`` come from in the request, for messages,
    #: when not the event's mapping (an identify's ``settings.list_ids_add``).
    add_at: str = ""
    remove_at: str = ""

    @property
    def add_path(self) -> str:
        return self.add_at or f"{mapping_path(self.event)}.add_to_list_ids"

    @property
    def remove_path(self) -> str:
        return self.remove_at or f"{mapping_path(self.event)}.remove_from_list_ids"


def mapping_path(event_name: str) -> str:
    """Where an event's mapping lives in the request, for messages that name it."""
    return f"settings.track_mappings[{json.dumps(event_name, ensure_ascii=False)}]"


def plan_track(event: Event, settings: Settings) -> TrackPlan | None:
    """The checked plan for ``event``, or None when no mapping names it (the event is
    skipped: no Pardot call). Raises InvalidArgument naming the offending setting or
    property; makes no call."""
    if not event.name.strip():
        raise InvalidArgument("event", "is required: it selects settings.track_mappings[event]")
    mapping = settings.track_mappings.get(event.name)
    if mapping is None:
        return None
    where = mapping_path(event.name)
    fields, warnings = _mapped_fields(event, settings, mapping, where)
    add_path, remove_path = f"{where}.add_to_list_ids", f"{where}.remove_from_list_ids"
    adds = _list_ids(mapping.add_to_list_ids, add_path)
    removals = _removals(mapping.remove_from_list_ids, remove_path, adds, add_path)
    return TrackPlan(
        event=event.name,
        fields=fields,
        list_ids=adds,
        external_activity=_external_activity(event.name, mapping, where),
        warnings=warnings,
        remove_list_ids=removals,
    )


def plan_identify(event: Event, settings: Settings) -> TrackPlan | None:
    """An identify's list memberships (``settings.list_ids_add`` / ``list_ids_remove``)
    as a plan :func:`run_track` applies; None when it asks for none. Raises
    InvalidArgument naming the offending id; makes no call."""
    add_path, remove_path = "settings.list_ids_add", "settings.list_ids_remove"
    adds = _list_ids(settings.list_ids_add, add_path)
    removals = _removals(settings.list_ids_remove, remove_path, adds, add_path)
    if not adds and not removals:
        return None
    return TrackPlan(
        event=event.name,
        list_ids=adds,
        remove_list_ids=removals,
        add_at=add_path,
        remove_at=remove_path,
    )


def identity_event(event: Event, settings: Settings) -> Event:
    """The event as the strategies see it: its traits are only what identifies the
    person — the email and the lookup field's value, each from ``context.traits`` or
    else ``properties`` — so resolving writes nothing but identity. ``pardot.id``/
    ``fid`` and ``user_id`` travel as they are. Values are checked here, under the
    name of the field they came from."""
    traits: dict[str, str] = {}
    found = _identity_value(event, "email")
    if found is not None:
        traits["email"] = check_email(found[1], found[0])
    if settings.lookup_field:
        found = _identity_value(event, settings.lookup_field)
        if found is not None:
            traits[settings.lookup_field] = format_value(found[1], found[0])
    return replace(event, traits=traits)


async def run_track(
    plan: TrackPlan, who: Event, settings: Settings, pardot: TrackGateway, resolve: Resolve
) -> TrackResult:
    """Resolve the prospect through ``resolve`` (the registry's strategy for ``who``),
    then apply the plan's actions in order: fields, list removals, list adds, activity.

    The mapped fields ride on the strategy's own prospect write, so writing them costs
    no call of its own; so do list removals on v3/v4 (``list_<id>=0``). Only a strategy
    that wrote nothing needs one update by id, which carries both. v5 removes by the
    list-membership object. Adding to a list needs the prospect's id, which a batch
    call's answer lacks: with lists to change, the strategy's writes are never batched
    (``need_answer``). A list add never re-subscribes a person who opted out of the
    list unless the connection allows it (``allow_resubscribe``): the action says
    SUPPRESSED, and the result's ``suppressed`` names the list.
    """
    await _check_targets(plan, pardot)  # before the prospect write: never half-applied
    dry_run = settings.dry_run
    carried_removals = (
        {list_field(list_id): "0" for list_id in plan.remove_list_ids}
        if pardot.api_version in LIST_FIELDS_VERSIONS
        else {}
    )
    carrier = _CarryingFields(
        pardot,
        {**plan.fields, **carried_removals},
        need_answer=bool(plan.list_ids or plan.remove_list_ids) and not dry_run,
    )
    synced = await resolve(carrier)
    synced.warnings.extend(plan.warnings)
    prospect = synced.prospect
    done = ActionStatus.PLANNED if dry_run else ActionStatus.APPLIED
    actions: list[TrackAction] = []

    fields_unchanged = carrier.delivered_unchanged
    if (plan.fields or carried_removals) and not carrier.delivered:
        prospect = await pardot.update_by_id(
            _known_id(prospect), {**plan.fields, **carried_removals}
        )
        fields_unchanged = prospect.unchanged
    if plan.fields:
        # A write the memory answered (skip_unchanged) found Pardot holding the fields.
        status = ActionStatus.ALREADY_APPLIED if fields_unchanged else done
        actions.append(
            TrackAction(ActionKind.WRITE_FIELDS, status, fields=tuple(sorted(plan.fields)))
        )

    lists = _ListMoves(pardot, settings, synced.suppressed)
    for list_id in plan.remove_list_ids:
        if carried_removals:
            status = ActionStatus.ALREADY_APPLIED if fields_unchanged else done
        else:
            status = await lists.remove(prospect.id if dry_run else _known_id(prospect), list_id)
        actions.append(TrackAction(ActionKind.REMOVE_FROM_LIST, status, list_id=list_id))

    for index, list_id in enumerate(plan.list_ids):
        prospect_id = prospect.id if dry_run else _known_id(prospect)
        try:
            status = await lists.add(prospect_id, list_id)
        except PardotError as exc:
            if exc.err_code != ERR_INVALID_LIST:
                raise
            raise _list_refused(exc, f"{plan.add_path}[{index}]", list_id) from None
        actions.append(TrackAction(ActionKind.ADD_TO_LIST, status, list_id=list_id))

    if plan.external_activity is not None:
        where = mapping_path(plan.event)
        extension, activity_type = plan.external_activity
        email = prospect.email or who.email
        if not email and not dry_run:
            raise InvalidArgument(
                "context.traits.email",
                "is required to record an external activity: Pardot records it by "
                "email, and the prospect has none",
            )
        try:
            await pardot.record_external_activity(extension, activity_type, plan.event, email)
        except PardotError as exc:
            if exc.rule is not UNKNOWN_PARDOT_ERROR:
                raise  # limits, credentials, outages: the table knows what they mean
            raise _activity_refused(exc, f"{where}.external_activity", plan) from None
        actions.append(
            TrackAction(
                ActionKind.EXTERNAL_ACTIVITY, done, external_activity=plan.external_activity
            )
        )
    return TrackResult(track_outcome(synced, actions), actions)


class _ListMoves:
    """The list verbs of one call, with what the service last wrote (``pardot.written``,
    as ``list_<id>`` = "1" / "0"): a membership it set and has not seen change costs no
    call (``skip_unchanged``), and what a verb did is remembered. A re-add the person
    opted out of is reported in ``suppressed``."""

    def __init__(
        self, pardot: TrackGateway, settings: Settings, suppressed: list[Suppressed]
    ) -> None:
        self._pardot = pardot
        self._resubscribe = settings.allow_resubscribe
        self._memory = settings.skip_unchanged and not settings.dry_run
        self._suppressed = suppressed

    async def add(self, prospect_id: int | None, list_id: int) -> ActionStatus:
        if await self._unchanged(prospect_id, list_id, "1"):
            return ActionStatus.ALREADY_APPLIED
        change = await self._pardot.add_to_list(prospect_id, list_id, resubscribe=self._resubscribe)
        if change is ListChange.OPTED_OUT:
            self._suppressed.append(Suppressed(reason=LIST_OPTED_OUT, list_id=list_id))
            return ActionStatus.SUPPRESSED
        if change is not ListChange.PLANNED:
            await self._wrote(prospect_id, list_id, "1")
        return _STATUS[change]

    async def remove(self, prospect_id: int | None, list_id: int) -> ActionStatus:
        if await self._unchanged(prospect_id, list_id, "0"):
            return ActionStatus.ALREADY_APPLIED
        change = await self._pardot.remove_from_list(prospect_id, list_id)
        if change is not ListChange.PLANNED:
            await self._wrote(prospect_id, list_id, "0")
        return _STATUS[change]

    async def _unchanged(self, prospect_id: int | None, list_id: int, value: str) -> bool:
        if not self._memory or prospect_id is None:
            return False
        return await self._pardot.written.unchanged(prospect_id, {list_field(list_id): value})

    async def _wrote(self, prospect_id: int | None, list_id: int, value: str) -> None:
        if self._memory and prospect_id is not None:
            await self._pardot.written.wrote(prospect_id, {list_field(list_id): value})


#: The action status of what a list verb did (OPTED_OUT is SUPPRESSED, see ``add``).
_STATUS: dict[ListChange, ActionStatus] = {
    ListChange.ADDED: ActionStatus.APPLIED,
    ListChange.RESUBSCRIBED: ActionStatus.APPLIED,
    ListChange.REMOVED: ActionStatus.APPLIED,
    ListChange.ALREADY_MEMBER: ActionStatus.ALREADY_APPLIED,
    ListChange.NOT_A_MEMBER: ActionStatus.ALREADY_APPLIED,
    ListChange.OPTED_OUT: ActionStatus.SUPPRESSED,
    ListChange.PLANNED: ActionStatus.PLANNED,
}


# --- checking a mapping (before any call) ------------------------------------------


async def _check_targets(plan: TrackPlan, pardot: TrackGateway) -> None:
    """Refuse, before the prospect is written, a mapping whose activity cannot be
    recorded on this connection or was refused lately, or whose lists the account does
    not have."""
    where = mapping_path(plan.event)
    if plan.external_activity is not None:
        pardot.check_external_activities()
        refused = pardot.refused_external_activity(*plan.external_activity)
        if refused is not None:
            raise _activity_refused(refused, f"{where}.external_activity", plan)
    named = plan.remove_list_ids + plan.list_ids
    if named:
        unknown = await pardot.unknown_lists(named)
        if unknown:
            list_id = unknown[0]
            if list_id in plan.remove_list_ids:
                path = f"{plan.remove_path}[{plan.remove_list_ids.index(list_id)}]"
            else:
                path = f"{plan.add_path}[{plan.list_ids.index(list_id)}]"
            error = PardotError(ERR_INVALID_LIST, "Invalid list ID")
            raise _list_refused(error, path, list_id)


def _mapped_fields(
    event: Event, settings: Settings, mapping: TrackMapping, where: str
) -> tuple[dict[str, FieldValue], tuple[str, ...]]:
    # The fields that identify the prospect are the strategy's to write, from
    # context.traits: an event property must not overwrite them under its feet.
    identity = {"email", settings.lookup_field} - {""}
    fields: dict[str, FieldValue] = {}
    written_by: dict[str, str] = {}
    for prop, pardot_field in sorted(mapping.fields.items()):
        path = f"{where}.fields[{json.dumps(prop, ensure_ascii=False)}]"
        if not prop.strip():
            raise InvalidArgument(path, "maps no property: name an event property")
        check_field_id(pardot_field, path)
        if pardot_field in READ_ONLY_FIELDS:
            raise InvalidArgument(path, f"names {pardot_field}, which is read-only in Pardot")
        if pardot_field in identity:
            raise InvalidArgument(
                path,
                f"names {pardot_field}, which identifies the prospect: send it in "
                "context.traits, and the prospect is resolved by it",
            )
        if pardot_field in written_by:
            raise InvalidArgument(
                path,
                f"writes {pardot_field}, which property {written_by[pardot_field]!r} writes too",
            )
        written_by[pardot_field] = prop
        found = _property(event.properties, prop)
        if found is not _ABSENT:
            fields[pardot_field] = field_value(pardot_field, found, f"properties.{prop}")
    check_multi_value_names(fields, lambda name: f"properties.{written_by[name]}")
    warnings: tuple[str, ...] = ()
    if mapping.fields and not fields:
        warnings = (
            f"the event carries none of the properties {where}.fields maps: no field written",
        )
    return fields, warnings


def _list_ids(list_ids: Sequence[object], path: str) -> tuple[int, ...]:
    """The ids, checked (each a positive integer) and without repeats, in order."""
    ids: list[int] = []
    for index, list_id in enumerate(list_ids):
        if isinstance(list_id, bool) or not isinstance(list_id, int) or list_id <= 0:
            raise InvalidArgument(
                f"{path}[{index}]",
                f"must be a Pardot list id (a positive integer), not {list_id!r}",
            )
        if list_id not in ids:
            ids.append(list_id)
    return tuple(ids)


def _removals(
    list_ids: Sequence[object], path: str, adds: tuple[int, ...], add_path: str
) -> tuple[int, ...]:
    """The lists to leave, checked: one list both added and removed is a contradiction
    the caller must settle, not a race for the service to decide."""
    removals = _list_ids(list_ids, path)
    for list_id in removals:
        if list_id in adds:
            index = list(list_ids).index(list_id)
            raise InvalidArgument(
                f"{path}[{index}]",
                f"names list {list_id}, which {add_path} adds: name it in one of them",
            )
    return removals


def _external_activity(
    event_name: str, mapping: TrackMapping, where: str
) -> tuple[str, str] | None:
    """The mapping's (extension, type), checked. The activity's value is the event name,
    which Pardot caps shorter than our own limit for event names: refused here, before
    any call, rather than by Pardot after the prospect was written."""
    if mapping.external_activity is None:
        return None
    if len(event_name) > EXTERNAL_ACTIVITY_VALUE_MAX:
        raise InvalidArgument(
            "event",
            f"is at most {EXTERNAL_ACTIVITY_VALUE_MAX} characters when its mapping records an "
            f"external activity ({where}.external_activity; Pardot's limit for the "
            f"activity's value, the event name), not {len(event_name)}",
        )
    extension, activity_type = (part.strip() for part in mapping.external_activity)
    for name, value in (("extension", extension), ("type", activity_type)):
        if not value:
            raise InvalidArgument(
                f"{where}.external_activity.{name}",
                "is required: an external activity is recorded under its Pardot "
                "extension and activity type",
            )
    return extension, activity_type


_ABSENT = object()


def _property(properties: Mapping[str, Any], name: str) -> Any:
    """The property ``name``, or a dotted path into nested objects (``order.total``)
    when no property has that exact name; ``_ABSENT`` when neither exists."""
    if name in properties:
        return properties[name]
    value: Any = properties
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _ABSENT
        value = value[part]
    return value


def _identity_value(event: Event, name: str) -> tuple[str, Any] | None:
    """(where it came from, value) for an identity trait: context.traits, else
    properties; None when neither carries a non-empty value."""
    for path, source in ((event.traits_path, event.traits), ("properties", event.properties)):
        value = source.get(name)
        if value is not None and value != "":
            return f"{path}.{name}", value
    return None


# --- applying a plan ---------------------------------------------------------------


def _known_id(prospect: Prospect) -> int:
    if prospect.id is None:
        raise ProspectSyncError(
            "Pardot's answer carries no prospect id, so the event's actions cannot be "
            "applied to it",
            reason=Reason.PARDOT_UNEXPECTED_RESPONSE,
        )
    return prospect.id


def _list_refused(exc: PardotError, path: str, list_id: int) -> InvalidArgument:
    """err 55: the mapping names a list the account does not have. Said with the
    setting to fix; Pardot's err_code is kept."""
    error = InvalidArgument(
        path, f"names list {list_id}, which Pardot does not know (err {exc.err_code})"
    )
    error.metadata["err_code"] = str(exc.err_code)
    return error


def _activity_refused(exc: PardotError, path: str, plan: TrackPlan) -> FailedPrecondition:
    """Pardot refused the activity for a reason its error table does not list (v5's
    codes are not documented): most likely the account has no such extension or
    activity type, so the message names the setting to check, with Pardot's text."""
    extension, activity_type = plan.external_activity or ("", "")
    return FailedPrecondition(
        f"Pardot refused the external activity {path} names (extension "
        f"{extension!r}, type {activity_type!r}): err {exc.err_code}: {exc.text}; check "
        "that the Pardot account has this extension and activity type",
        reason=Reason.EXTERNAL_ACTIVITY_REFUSED,
        metadata={"err_code": str(exc.err_code)},
    )


class _CarryingFields(GatewayWrapper):
    """The gateway a strategy resolves a track call through. Its first prospect write
    that succeeds also carries the mapped fields; the strategy's own fields (identity,
    campaign) win over a mapped field of the same name. A write that fails (a stale
    id, err 3) leaves them for the strategy's next write. With ``need_answer``, every
    write asks for Pardot's own answer (the event's actions need the id). The verbs and
    their version rules are the base class's; only the primitives pass through."""

    def __init__(self, inner: Gateway, mapped: Fields, *, need_answer: bool = False) -> None:
        super().__init__(inner)
        self._mapped = dict(mapped)
        self.delivered = not mapped
        #: The write that carried the mapped fields changed nothing (``Prospect.unchanged``).
        self.delivered_unchanged = False
        self._need_answer = need_answer

    async def write(
        self,
        operation: WriteOperation,
        key: ProspectKey,
        fields: Fields,
        *,
        need_answer: bool,
    ) -> Prospect:
        need_answer = need_answer or self._need_answer
        if self.delivered:
            return await self._inner.write(operation, key, fields, need_answer=need_answer)
        prospect = await self._inner.write(
            operation, key, {**self._mapped, **fields}, need_answer=need_answer
        )
        self.delivered = True
        self.delivered_unchanged = prospect.unchanged
        return prospect
