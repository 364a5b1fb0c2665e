"""From scrm's external keys to HubSpot record ids, with a bounded memory of what is known.

Contacts and tickets carry the key in a unique-value property, so a batch read by
``idProperty`` finds them (https://developers.hubspot.com/docs/api/crm/understanding-the-crm);
what this process wrote or found is remembered so that references usually cost no call.
The memory is bounded (least recently used goes first): forgetting only costs a lookup.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Generic, TypeVar

from scrm_core.errors import FatalError, RetryableError

from .api import HubSpotApi, error_category

__all__ = ["BATCH", "LruMap", "RecordIds"]

BATCH = 100  # inputs per batch request (HubSpot's documented maximum)

K = TypeVar("K")
V = TypeVar("V")


class LruMap(Generic[K, V]):
    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self.max_size:
            self._data.popitem(last=False)

    def pop(self, key: K) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()


def chunks(items: list[str], size: int = BATCH) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class RecordIds:
    """Record ids of contacts and tickets by a unique property's value."""

    def __init__(self, api: HubSpotApi, max_size: int = 100_000) -> None:
        self.api = api
        self._known: LruMap[tuple[str, str, str], str] = LruMap(max_size)

    def remember(self, obj: str, prop: str, value: str, record_id: str) -> None:
        self._known.put((obj, prop, value), record_id)

    def known(self, obj: str, prop: str, value: str) -> str | None:
        """The remembered id (no request), or None."""
        return self._known.get((obj, prop, value))

    def forget(self, obj: str, prop: str, value: str) -> None:
        self._known.pop((obj, prop, value))

    async def find(self, obj: str, prop: str, values: Iterable[str]) -> dict[str, str]:
        """Ids of the records whose ``prop`` holds these values; absent ones are left out."""
        found: dict[str, str] = {}
        missing: list[str] = []
        for value in dict.fromkeys(values):
            known = self._known.get((obj, prop, value))
            if known is None:
                missing.append(value)
            else:
                found[value] = known
        for part in chunks(missing):
            body = {"inputs": [{"id": v} for v in part], "idProperty": prop, "properties": [prop]}
            reply = await self.api.call(f"read {obj} by {prop}", self.api.objects.read_with_http_info, obj, body)
            if not reply.ok:
                category, message = error_category(reply.body)
                if reply.status == 400:
                    raise FatalError(
                        f"HubSpot cannot look up {obj} by {prop} ({message}); run `scrm hubspot setup` to create "
                        "the unique-value properties scrm needs"
                    )
                raise RetryableError(f"HubSpot refused to read {obj} ({category}: {message})")
            for result in reply.body.get("results") or []:
                held = (result.get("properties") or {}).get(prop)
                if held is not None:
                    found[held] = str(result["id"])
                    self.remember(obj, prop, held, str(result["id"]))
        return found

    def clear(self) -> None:
        self._known.clear()
