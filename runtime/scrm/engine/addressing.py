"""Which messages are addressed to the company: ``message.addressed_to_us``.

A message is addressed to the company when it is inbound and

* is a direct message (scrm reads one only as a participant, through the company's account);
* mentions one of the ``[company] accounts`` of its network (the network's mention list,
  or an ``@handle`` in the text, which is how Bluesky shows a handle whose mention list
  holds DIDs); or
* replies to a message by one of them: the parent's author is looked up among the
  page's messages, then in the state store (one query per page), and a Bluesky parent's
  ``at://did:.../`` URI names its author itself.

Accounts are compared without case and without a leading ``@``; an account written with
its server (``acmehelp@mastodon.social``) also matches the bare name, which is how the
Mastodon server scrm reads from shows its own local accounts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from scrm_core.models import Direction, Message, MessageCreated, MessageEdited, SocialProfile, Visibility

from .lookups import Lookups

# The shape of an @mention in text, as the listening tokenizer reads it (not inside e-mail addresses).
_TEXT_MENTION = re.compile(r"(?<![\w@])@(\w+(?:[.@]\w+)*)")
_AT_URI = re.compile(r"^at://([^/]+)/")
_CACHE_LIMIT = 100_000


def _normal(name: str) -> str:
    return name.strip().casefold().lstrip("@")


class CompanyAccounts:
    """The company's own accounts per network, normalised for comparison."""

    def __init__(self, accounts: Mapping[str, Sequence[str]]) -> None:
        self._names: dict[str, frozenset[str]] = {}
        for network, names in accounts.items():
            normal = {_normal(name) for name in names}
            normal |= {name.split("@", 1)[0] for name in normal if "@" in name}  # user@server -> user
            self._names[network] = frozenset(normal)

    def __bool__(self) -> bool:
        return any(self._names.values())

    def names(self, network: str) -> frozenset[str]:
        return self._names.get(network, frozenset())

    def owns(self, profile: SocialProfile) -> bool:
        names = self._names.get(profile.network)
        if not names:
            return False
        return _normal(profile.account_id) in names or (profile.handle is not None and _normal(profile.handle) in names)

    def reason(self, message: Message, replied_to: str | None = None) -> str | None:
        """Why ``message`` is addressed to the company (for explanations), or None.

        :param replied_to: the company's account that wrote the message's parent, when known.
        """
        if message.direction is not Direction.inbound:
            return None
        names = self._names.get(message.network)
        if message.visibility is Visibility.direct:
            found: str | None = "a direct message"
        elif names:
            found = self._evidence(message, names, replied_to)
        else:
            return None
        return None if found is None or self.owns(message.author) else found

    @staticmethod
    def _evidence(message: Message, names: frozenset[str], replied_to: str | None) -> str | None:
        in_text = _TEXT_MENTION.findall(message.text) if "@" in message.text else []
        for mention in (*message.mentions, *in_text):
            if _normal(mention) in names:
                return f"mentions @{_normal(mention)}"
        if replied_to is not None:
            return f"replies to {replied_to}"
        if message.parent_id is not None:
            at_uri = _AT_URI.match(message.parent_id)
            if at_uri and at_uri.group(1).casefold() in names:
                return f"replies to {at_uri.group(1)}"
        return None


class Addressing:
    """Sets ``addressed_to_us`` on the messages of a page, with one store lookup per page for parents."""

    def __init__(self, accounts: CompanyAccounts, store: Lookups | None) -> None:
        self.accounts = accounts
        self.store = store
        self._ours: dict[str, str | None] = {}  # author key -> the company's account it is, or None (bounded)

    async def mark(self, events: Iterable[object]) -> None:
        messages = [e.message for e in events if isinstance(e, MessageCreated | MessageEdited)]
        if not self.accounts:  # only direct messages can be addressed to the company
            for message in messages:
                if message.visibility is Visibility.direct and message.direction is Direction.inbound:
                    message.addressed_to_us = True
            return
        parents = await self._replied_to(messages) if messages else {}
        reason = self.accounts.reason
        for message in messages:
            if message.addressed_to_us:
                continue  # the adapter knew (a mentions or direct-message feed)
            parent = parents.get(f"{message.network}:{message.parent_id}") if message.parent_id else None
            message.addressed_to_us = reason(message, parent) is not None

    def _display(self, profile: SocialProfile) -> str | None:
        return f"@{profile.handle or profile.account_id}" if self.accounts.owns(profile) else None

    async def _replied_to(self, messages: list[Message]) -> dict[str, str]:
        """Parent key -> the company's account that wrote it, for replies no other evidence marks already."""
        in_page = {m.key: m.author for m in messages}
        wanted = {
            f"{m.network}:{m.parent_id}"
            for m in messages
            if m.parent_id is not None and self.accounts.names(m.network) and self.accounts.reason(m) is None
        }
        found: dict[str, str] = {}
        for key in wanted & in_page.keys():
            ours = self._display(in_page[key])
            if ours:
                found[key] = ours
        missing = sorted(wanted - in_page.keys())
        if not missing or self.store is None:
            return found
        records = await self.store.messages(missing)
        unknown = sorted({r.author_key for r in records.values() if r.author_key and r.author_key not in self._ours})
        if unknown:
            if len(self._ours) + len(unknown) > _CACHE_LIMIT:
                self._ours.clear()
            profiles = await self.store.profiles(unknown)
            for author_key in unknown:
                profile = profiles.get(author_key)
                self._ours[author_key] = self._display(profile.profile) if profile is not None else None
        for key, parent in records.items():
            ours = self._ours.get(parent.author_key)
            if ours:
                found[key] = ours
        return found
