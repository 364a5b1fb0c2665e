"""Room events -> scrm events, with what a single event does not say looked up.

An edit only names the message it replaces, and a rich reply only names its parent, so
turning them into full :class:`Message` states needs the events they point at. The
:class:`EventIndex` remembers a summary of every event the adapter has read (the whole
sync batch is remembered before any of it is translated) and fetches the rest with
``GET /rooms/{roomId}/event/{eventId}``.

Conversation mapping (scrm keys a conversation by its root message):

* a plain message is a root (``thread_root_id`` None);
* a message in a thread (``rel_type: m.thread``) has the thread root as ``thread_root_id``,
  and as ``parent_id`` the event its ``m.in_reply_to`` names, unless that is only the
  fallback for unthreaded clients (``is_falling_back``): then the root;
* a rich reply outside a thread has the replied-to event as ``parent_id`` and that
  event's root as ``thread_root_id`` (a reply chain is one conversation);
* an edit (``m.replace``) becomes :class:`MessageEdited` with the original's id, author,
  time and place in the conversation, and the text of ``m.new_content``. Edits by
  someone other than the original's sender are invalid and ignored
  (https://spec.matrix.org/v1.15/client-server-api/#validity-of-replacement-events);
* a redaction of a message becomes :class:`MessageDeleted`. A message that was already
  redacted when it is read still comes as :class:`MessageCreated` (empty text, no
  relations: the homeserver strips them) so that its deletion has something to delete.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from scrm_core.models import (
    Direction,
    Event,
    Message,
    MessageCreated,
    MessageDeleted,
    MessageEdited,
    ProfileUpdated,
    SocialProfile,
    Visibility,
)

from .api import MatrixApi, MatrixRequestError
from .mapping import (
    MEMBER,
    MESSAGE,
    REDACTION,
    REPLACE,
    THREAD,
    Relation,
    body_text,
    hashtags_of,
    is_redacted,
    mentions_of,
    permalink,
    profile_change,
    redacted_id,
    relation_of,
    timestamp,
)

__all__ = ["EventIndex", "Malformed", "Summary", "Translator"]

log = logging.getLogger("scrm.matrix")


class Malformed(ValueError):
    """A room event that breaks the spec; the page lists it among its rejects."""


#: How far up a reply chain the root is looked for before the last parent found is taken.
_MAX_CHAIN = 200


@dataclass(frozen=True)
class Summary:
    """What the index keeps of one room event."""

    room_id: str
    event_id: str
    type: str
    sender: str
    ts: int
    relation: Relation
    redacted: bool

    @classmethod
    def of(cls, room_id: str, event: dict[str, Any]) -> Summary:
        content = _content(event)
        return cls(
            room_id=room_id,
            event_id=str(event["event_id"]),
            type=str(event.get("type", "")),
            sender=str(event.get("sender", "")),
            ts=int(event.get("origin_server_ts", 0)),
            relation=relation_of(content),
            redacted=is_redacted(event),
        )

    @property
    def is_edit(self) -> bool:
        return self.relation.rel_type == REPLACE


class EventIndex:
    """Summaries of room events by id, read from the stream or fetched; bounded in size."""

    def __init__(self, api: MatrixApi, max_size: int = 50_000) -> None:
        self.api = api
        self.max_size = max_size
        self._seen: dict[str, Summary] = {}
        self._roots: dict[str, str] = {}

    def remember(self, room_id: str, event: dict[str, Any]) -> Summary:
        summary = Summary.of(room_id, event)
        self._seen[summary.event_id] = summary
        if len(self._seen) > self.max_size:  # forget the oldest tenth
            for key in list(self._seen)[: self.max_size // 10]:
                del self._seen[key]
            self._roots.clear()
        return summary

    def known_room(self, event_id: str) -> str | None:
        seen = self._seen.get(event_id)
        return seen.room_id if seen else None

    async def get(self, room_id: str, event_id: str) -> Summary | None:
        """The event's summary; None if the homeserver does not have it or will not show it."""
        if event_id in self._seen:
            return self._seen[event_id]
        try:
            event = await self.api.event(room_id, event_id)
        except MatrixRequestError as exc:
            if exc.status in (403, 404):
                return None
            raise
        return self.remember(room_id, event)

    async def root_of(self, room_id: str, event_id: str) -> str:
        """The conversation root of an event: a thread's root, the top of a reply chain, or itself."""
        if event_id in self._roots:
            return self._roots[event_id]
        chain: list[str] = []
        current = event_id
        root = event_id
        for _ in range(_MAX_CHAIN):
            chain.append(current)
            summary = await self.get(room_id, current)
            if summary is None:
                root = current
                break
            if summary.relation.rel_type == THREAD and summary.relation.target:
                root = summary.relation.target
                break
            parent = summary.relation.reply_to if not summary.is_edit else None
            if parent is None or parent in chain:
                root = current
                break
            if parent in self._roots:
                root = self._roots[parent]
                break
            current = parent
        else:
            root = current
        for link in chain:
            self._roots[link] = root
        return root

    async def placement(self, summary: Summary) -> tuple[str | None, str | None]:
        """``(thread_root_id, parent_id)`` of a message, as the module docstring explains."""
        rel = summary.relation
        if rel.rel_type == THREAD and rel.target:
            parent = rel.reply_to if rel.reply_to and not rel.falling_back else rel.target
            return rel.target, parent
        if rel.reply_to and rel.reply_to != summary.event_id:
            return await self.root_of(summary.room_id, rel.reply_to), rel.reply_to
        return None, None


class Translator:
    """Turns one room event into at most one scrm event."""

    def __init__(self, network: str, me: str, direct_rooms: set[str], index: EventIndex) -> None:
        self.network = network
        self.me = me
        self.direct_rooms = direct_rooms
        self.index = index
        self.names: dict[str, str] = {}

    def learn(self, room_id: str, event: dict[str, Any]) -> None:
        """Remember an event (and, for a member event, the display name) without translating it."""
        self.index.remember(room_id, event)
        if event.get("type") == MEMBER:
            name = (event.get("content") or {}).get("displayname")
            user = event.get("state_key")
            if isinstance(user, str) and isinstance(name, str) and name:
                self.names[user] = name

    async def translate(self, room_id: str, event: dict[str, Any]) -> Event | None:
        kind = event.get("type")
        if kind == MEMBER:
            profile = profile_change(event, self.network)
            return ProfileUpdated(profile=profile, version=str(event["event_id"])) if profile else None
        if kind == REDACTION:
            return await self._deletion(room_id, event)
        if kind == MESSAGE:
            summary = self.index.remember(room_id, event)
            if summary.is_edit and not summary.redacted:
                return await self._edit(summary, event)
            return MessageCreated(message=await self.message(summary, event))
        return None

    async def message(self, summary: Summary, event: dict[str, Any], content: dict[str, Any] | None = None) -> Message:
        """The :class:`Message` of a (non-edit) event, with ``content`` in place of its own if given."""
        content = _content(event) if content is None else content
        root, parent = await self.index.placement(summary)
        text = body_text(content, reply=summary.relation.reply_to is not None)
        return Message(
            network=self.network,
            id=summary.event_id,
            author=self.profile(summary.sender),
            text=text,
            created_at=timestamp(summary.ts),
            thread_root_id=root,
            parent_id=parent,
            visibility=Visibility.direct if summary.room_id in self.direct_rooms else Visibility.public,
            direction=Direction.outbound if summary.sender == self.me else Direction.inbound,
            mentions=mentions_of(content),
            hashtags=hashtags_of(text),
            url=permalink(summary.room_id, summary.event_id),
        )

    def profile(self, user_id: str) -> SocialProfile:
        return SocialProfile(
            network=self.network,
            account_id=user_id,
            handle=user_id,
            display_name=self.names.get(user_id),
            url=permalink(user_id),
        )

    async def _edit(self, edit: Summary, event: dict[str, Any]) -> Event | None:
        target = edit.relation.target
        original = await self.index.get(edit.room_id, target) if target else None
        if original is None or original.type != MESSAGE or original.is_edit or original.sender != edit.sender:
            log.debug("ignoring edit %s: its original is missing, not a message, or not the sender's", edit.event_id)
            return None
        new_content = (event.get("content") or {}).get("m.new_content")
        if not isinstance(new_content, dict):
            raise Malformed(f"edit {edit.event_id} has no m.new_content")
        # m.new_content carries no m.relates_to: the place in the conversation stays the
        # original's, which message() takes from the original's summary.
        message = await self.message(original, {}, new_content)
        text = body_text(new_content, reply=False)
        return MessageEdited(
            message=message.model_copy(
                update={"text": text, "hashtags": hashtags_of(text), "edited_at": timestamp(edit.ts)}
            )
        )

    async def _deletion(self, room_id: str, event: dict[str, Any]) -> Event | None:
        target = redacted_id(event)
        if target is None:
            return None
        original = await self.index.get(room_id, target)
        # Only messages are scrm messages: a redacted member event or edit deletes nothing.
        if original is not None and (original.type != MESSAGE or original.is_edit):
            return None
        return MessageDeleted(network=self.network, message_id=target, deleted_at=timestamp(event["origin_server_ts"]))


def _content(event: dict[str, Any]) -> dict[str, Any]:
    content = event.get("content")
    return content if isinstance(content, dict) else {}
