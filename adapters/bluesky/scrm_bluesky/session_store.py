"""The session kept between runs, so a restart does not spend a createSession.

Bluesky limits ``com.atproto.server.createSession`` to 30 per 5 minutes and 300 per day per
account (https://docs.bsky.app/docs/advanced-guides/rate-limits); the access token lives
about 2 hours and is refreshed with the refresh token (MarshalX/atproto#12). The file holds
the SDK's session string (handle, DID, both JWTs, PDS) with the service and identifier it
belongs to, is written atomically with mode 0600, and is never logged.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

__all__ = ["SessionFile"]


class SessionFile:
    def __init__(self, path: Path, *, service: str, identifier: str) -> None:
        self.path = path
        self.service = service
        self.identifier = identifier

    def load(self) -> str | None:
        """The saved session string, or None (no file, unreadable, or another account's)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if (
            not isinstance(data, dict)
            or data.get("service") != self.service
            or data.get("identifier") != self.identifier
        ):
            return None
        session = data.get("session")
        return session if isinstance(session, str) and session else None

    def save(self, session: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        payload = json.dumps({"version": 1, "service": self.service, "identifier": self.identifier, "session": session})
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # the umask cannot widen it
            os.write(fd, payload.encode("utf-8"))
        finally:
            os.close(fd)
        os.replace(tmp, self.path)

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
