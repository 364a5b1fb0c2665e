"""The conformance suite's default scenario, played into Synapse as real room events.

Synapse assigns event ids and timestamps, so the scenario cannot be loaded "as is":
:func:`load` performs each scenario event as the Matrix action it stands for and returns
the scenario rewritten with what the homeserver assigned. That rewritten list is what the
adapter must yield:

* every person is a registered user; the brand is the adapter's account;
* public messages go to one room the brand creates, the direct message to a second room
  marked in the brand's ``m.direct`` account data;
* a reply is a rich reply (``m.in_reply_to``), except those listed in ``THREADED``, which
  go into a thread on their root (``m.thread``), one with an explicit reply and one
  falling back, so both shapes are exercised;
* each person's join (with their handle as display name) is a ``ProfileUpdated`` whose
  version is the join event's id; the scenario's first profile event is alice's join, and
  a later profile event is a display-name change in every room the person is in;
* an edit is an ``m.replace`` event (``edited_at`` = its ``origin_server_ts``), a
  deletion a redaction by the author.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scrm_core.models import (
    Event,
    Message,
    MessageCreated,
    MessageDeleted,
    MessageEdited,
    ProfileUpdated,
    SocialProfile,
    Visibility,
)

from .conftest import Homeserver, User

#: Scenario replies sent in a thread: id -> whether m.in_reply_to is only the fallback.
THREADED = {"108": True, "110": False}


@dataclass
class World:
    brand: User
    users: dict[str, User]  # scenario account_id -> user
    room: str
    dm_room: str
    events: list[Event] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)  # scenario message id -> event id
    rooms_of: dict[str, str] = field(default_factory=dict)  # event id -> room

    @property
    def rooms(self) -> list[str]:
        return [self.room, self.dm_room]


def load(hs: Homeserver, scenario: list[Event], network: str = "matrix") -> World:
    people = _people(scenario)
    users = {acct: hs.register(p.handle or acct, displayname=p.handle) for acct, p in people.items()}
    brand_acct = next(acct for acct, p in people.items() if p.handle == "brand")
    brand = users[brand_acct]
    world = World(brand=brand, users=users, room="", dm_room="")

    def profile_event(user: User, member_event: str, display: str) -> ProfileUpdated:
        profile = SocialProfile(network=network, account_id=user.user_id, handle=user.user_id, display_name=display)
        return ProfileUpdated(profile=profile, version=member_event)

    # Rooms and joins. createRoom makes the creator's join; read its id from the room state.
    world.room = brand.create_room(preset="public_chat", name="Acme support")
    world.events.append(profile_event(brand, _member_event_id(brand, world.room, brand.user_id), "brand"))
    dm_people = {
        e.message.author.account_id
        for e in scenario
        if isinstance(e, MessageCreated) and e.message.visibility is Visibility.direct
    }
    world.dm_room = brand.create_room(preset="trusted_private_chat", is_direct=True)
    world.events.append(profile_event(brand, _member_event_id(brand, world.dm_room, brand.user_id), "brand"))
    for acct, user in users.items():
        if user is brand:
            continue
        handle = people[acct].handle or acct
        world.events.append(profile_event(user, user.join(world.room, handle), handle))
        if acct in dm_people:
            brand.invite(world.dm_room, user.user_id)
            world.events.append(profile_event(user, user.join(world.dm_room, handle), handle))
    brand.call(
        "PUT",
        f"/user/{_q(brand.user_id)}/account_data/m.direct",
        {users[a].user_id: [world.dm_room] for a in dm_people},
    )

    seen_profiles: set[str] = set()
    messages: dict[str, Message] = {}
    for event in scenario:
        if isinstance(event, ProfileUpdated):
            acct = event.profile.account_id
            if acct in seen_profiles:  # a change: new display name in each room the user is in
                user, handle = users[acct], event.profile.handle or acct
                rooms = [world.room] + ([world.dm_room] if acct in dm_people else [])
                for room in rooms:
                    world.events.append(profile_event(user, user.join(room, handle), handle))
            seen_profiles.add(acct)  # the first one is the join, already done
        elif isinstance(event, MessageCreated):
            world.events.append(_post(world, event.message, messages, network))
        elif isinstance(event, MessageEdited):
            world.events.append(_edit(world, event.message, messages))
        elif isinstance(event, MessageDeleted):
            eid = world.ids[event.message_id]
            room = world.rooms_of[eid]
            author = users[messages[event.message_id].author.account_id]
            redaction = author.redact(room, eid)
            deleted_at = _ts(author.event(room, redaction))
            world.events.append(MessageDeleted(network=network, message_id=eid, deleted_at=deleted_at))
    return world


def _post(world: World, m: Message, messages: dict[str, Message], network: str) -> MessageCreated:
    user = world.users[m.author.account_id]
    room = world.dm_room if m.visibility is Visibility.direct else world.room
    content: dict[str, Any] = {"msgtype": "m.text", "body": m.text}
    if m.mentions:
        by_handle = {u.user_id.split("-")[0].lstrip("@"): u.user_id for u in world.users.values()}
        content["m.mentions"] = {"user_ids": [by_handle[h] for h in m.mentions]}
    root = parent = None
    if m.parent_id is not None:
        parent = world.ids[m.parent_id]
        root = world.ids[m.thread_root_id or m.parent_id]
        if m.id in THREADED:
            content["m.relates_to"] = {
                "rel_type": "m.thread",
                "event_id": root,
                "is_falling_back": THREADED[m.id],
                "m.in_reply_to": {"event_id": parent},
            }
        else:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": parent}}
    eid = user.send(room, content)
    world.ids[m.id], world.rooms_of[eid] = eid, room
    sent = user.event(room, eid)
    loaded = m.model_copy(
        update={
            "id": eid,
            "author": m.author.model_copy(update={"account_id": user.user_id, "handle": user.user_id}),
            "created_at": _ts(sent),
            "thread_root_id": root,
            "parent_id": parent,
        }
    )
    messages[m.id] = m
    return MessageCreated(message=loaded)


def _edit(world: World, m: Message, messages: dict[str, Message]) -> MessageEdited:
    eid = world.ids[m.id]
    room = world.rooms_of[eid]
    user = world.users[m.author.account_id]
    edit = user.edit(room, eid, m.text)
    return MessageEdited(message=m.model_copy(update={"id": eid, "edited_at": _ts(user.event(room, edit))}))


def _people(scenario: list[Event]) -> dict[str, SocialProfile]:
    people: dict[str, SocialProfile] = {}
    for e in scenario:
        profile = e.profile if isinstance(e, ProfileUpdated) else getattr(getattr(e, "message", None), "author", None)
        if profile is not None:
            people.setdefault(profile.account_id, profile)
    return people


def _member_event_id(user: User, room: str, user_id: str) -> str:
    for event in user.call("GET", f"/rooms/{_q(room)}/state"):
        if event["type"] == "m.room.member" and event["state_key"] == user_id:
            return str(event["event_id"])
    raise AssertionError(f"no member event of {user_id} in {room}")


def _ts(event: dict[str, Any]) -> Any:
    from scrm_matrix.mapping import timestamp

    return timestamp(event["origin_server_ts"])


def _q(segment: str) -> str:
    from urllib.parse import quote

    return quote(segment, safe="")
