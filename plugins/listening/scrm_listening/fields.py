"""Field operators (``author:``, ``lang:``, ``network:``, ``site:``, ``is:``, ``has:``,
``min_followers:``): their values, and what the fields other tools have are refused with.
"""

from __future__ import annotations

import re

from .errors import QuerySyntaxError
from .nodes import Field, MinFollowers, Node
from .text import normalize, normalize_handle, normalize_language

#: Exact-valued fields and the values they accept (None: any value of that shape).
FIELD_VALUES: dict[str, tuple[str, ...] | None] = {
    "author": None,
    "lang": None,
    "network": None,
    "is": ("reply", "verified", "direct"),
    "has": ("links", "mentions", "hashtags"),
}
#: Other spellings of the same field: Brandwatch writes ``language:``, ``site:`` names a network by its domain.
ALIASES = {"language": "lang", "site": "network"}
FIELDS = (*FIELD_VALUES, "min_followers", *ALIASES)

#: ``site:`` (Brandwatch, Talkwalker) for the networks scrm reads; other sites are not messages scrm sees.
SITES = {
    "twitter.com": "x",
    "x.com": "x",
    "reddit.com": "reddit",
    "bsky.app": "bluesky",
    "facebook.com": "facebook",
    "instagram.com": "instagram",
}

_SCRM_SEES = "scrm matches the text, author, network, language and reply/link flags of a message"
#: Fields of Brandwatch, Talkwalker, SentiOne and X rules that scrm cannot evaluate, and what to write instead.
FOREIGN_FIELDS = {
    "raw": "raw: was retired by Brandwatch in favour of {…}: write {Google} for case-sensitive text",
    "from": "write author:NAME (from: is X's spelling)",
    "to": "to: (replies to an account) is not supported: route on when.addressed_to_us instead",
    "title": f"title: is not supported: {_SCRM_SEES}",
    "url": f"url: is not supported: {_SCRM_SEES}; links in the text are searchable as words",
    "links": f"links: is not supported: {_SCRM_SEES}; write has:links, or the domain's words (acme com)",
    "domain": f"domain: is not supported: {_SCRM_SEES}",
    "sourcetype": "sourcetype: is not supported: write network:NAME",
    "country": f"location fields are not supported: {_SCRM_SEES}",
    "city": f"location fields are not supported: {_SCRM_SEES}",
    "region": f"location fields are not supported: {_SCRM_SEES}",
    "state": f"location fields are not supported: {_SCRM_SEES}",
    "county": f"location fields are not supported: {_SCRM_SEES}",
    "continent": f"location fields are not supported: {_SCRM_SEES}",
    "authorgender": f"author demographics are not supported: {_SCRM_SEES}",
    "pagetype": "pageType: is not supported: write network:NAME",
}

FIELD_SHAPE = re.compile(r"^([A-Za-z_]+):(.*)$", re.DOTALL)
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{1,8})*$")
_NETWORK = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def field(name: str, value: str, column: int) -> Node:
    """One ``name:value`` (``column`` is where ``name`` starts; the value starts after the colon)."""
    value_column = column + len(name) + 1
    if name not in FIELDS:
        hint = FOREIGN_FIELDS.get(name.casefold())
        if hint:
            raise QuerySyntaxError(hint, column)
        known = ", ".join(f"{f}:" for f in FIELDS)
        raise QuerySyntaxError(f"unknown field '{name}:' (known: {known}); quote it to search the text", column)
    if not value:
        raise QuerySyntaxError(f"{name}: needs a value", value_column)
    if name == "min_followers":
        if not (value.isdigit() and value.isascii()):
            raise QuerySyntaxError("min_followers: needs a whole number, e.g. min_followers:1000", value_column)
        return MinFollowers(int(value), column)
    if name == "site":
        site = value.casefold().removeprefix("https://").removeprefix("http://").removeprefix("www.").rstrip("/")
        if site not in SITES:
            raise QuerySyntaxError(
                f"site: takes a network's domain ({', '.join(SITES)}); for others write network:NAME", value_column
            )
        return Field("network", SITES[site], column)
    canonical = ALIASES.get(name, name)
    allowed = FIELD_VALUES[canonical]
    if canonical == "author":
        value = normalize_handle(value)
    elif canonical == "lang":
        value = normalize_language(value)
        if not _LANGUAGE.match(value):
            raise QuerySyntaxError(f"{name}: needs a language code, e.g. {name}:en or {name}:pt-br", value_column)
    else:
        value = normalize(value)
    if allowed is not None and value not in allowed:
        raise QuerySyntaxError(f"{name}: takes {', '.join(allowed)}", value_column)
    if canonical == "network" and not _NETWORK.match(value):
        raise QuerySyntaxError("network: needs a network name, e.g. network:reddit", value_column)
    if not value:
        raise QuerySyntaxError(f"{name}: needs a value", value_column)
    return Field(canonical, value, column)
