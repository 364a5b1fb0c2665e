"""One redaction layer for every line scrm logs, prints or keeps as text.

Secrets reach text in many ways: a service that echoes request headers in its error body,
an exception whose message holds a URL with a token in it (Telegram's Bot API puts the
token in the path), httpx's own request log at ``-v``, a traceback with
``SCRM_RAISE_ERRORS=1``. Rather than trusting every adapter to scrub its own messages, the
core scrubs everything on the way out:

* **configured secrets**: every ``SecretStr`` of every adapter's settings is registered
  when the config is loaded or the adapter is built (:func:`register_settings`), and
  adapters register secrets they obtain at run time (a refreshed OAuth token) with
  :func:`register_secret`; each is replaced wherever it appears, also URL-encoded or
  JSON-escaped;
* **credential shapes** whoever owns them: ``Authorization`` and API-key headers, tokens
  and keys in query strings and JSON, passwords in URLs, bot tokens in URL paths.

It is applied, once, at these doors: every log record (:func:`scrm.logs.install_logging`, a record
factory, so httpx's and uvicorn's loggers too), the process's stdout and stderr in the CLI
(:func:`scrm.logs.install_streams`, so tracebacks as well), every :class:`~scrm_core.errors.ScrmError`
message, and the free-text columns of the state store (dead-letter reasons, reply errors,
audit details). Log messages are also made single-line (control characters escaped) and
bounded, so a hostile value can neither forge a log line nor make logging slow.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import traceback
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

from pydantic import BaseModel, SecretBytes, SecretStr

__all__ = [
    "MARK",
    "RedactingFilter",
    "printable",
    "redact",
    "redacted_traceback",
    "register_secret",
    "register_settings",
]

MARK = "[REDACTED]"
#: Shorter values are not registered: replacing every "abc" would garble the logs and
#: hide nothing (a real credential is longer).
MIN_SECRET_LENGTH = 6
#: The longest log message kept (a record is cut there; the rest is counted, not shown).
MAX_LOG_MESSAGE = 2000

_lock = threading.Lock()
_secrets: set[str] = set()
_secret_pattern: re.Pattern[str] | None = None

# name = value / name: value / "name": "value", for names that always hold a credential.
_KEY_NAMES = (
    r"authorization|proxy-authorization|x-api-key|api[-_]?key|apikey|x-auth-token|x-access-token|"
    r"access[-_]?token|refresh[-_]?token|id[-_]?token|auth[-_]?token|client[-_]?secret|app[-_]?secret|"
    r"consumer[-_]?secret|token[-_]?secret|private[-_]?key|password|passwd|cookie|set-cookie|"
    r"hub\.verify_token|verify[-_]?token"
)
# Not after "." or a word character: "settings.api_key: Field required" names a key, it
# does not hold one. Values are 8+ characters: "password: Field required" is no password.
_NAMED = re.compile(
    rf"""(?P<name>(?<![.\w-])["']?(?:{_KEY_NAMES})["']?\s*[:=]\s*["']?)"""
    r"""(?P<scheme>(?:bearer|basic|token|bot|oauth|digest|sso-key)\s+)?"""
    r"""(?P<value>[^\s"',;&}\])\[][^\s"',;&}\])]{7,})""",
    re.IGNORECASE,
)
# Query-string parameters that carry credentials under short names (?key=..., &sig=...).
_QUERY = re.compile(r"(?P<name>[?&;](?:key|token|sig|signature|secret|code|auth)=)(?P<value>[^&\s#\"']+)", re.I)
# A bare "Bearer <token>" wherever it appears (an echoed header without its name).
_BEARER = re.compile(r"(?P<name>\bbearer\s+)(?P<value>[A-Za-z0-9._~+/=-]{8,})", re.IGNORECASE)
# user:password@ in a URL.
_USERINFO = re.compile(r"(?P<name>\b[a-z][a-z0-9+.-]*://[^\s/:@]*:)(?P<value>[^\s/@]+)(?=@)", re.IGNORECASE)
# Telegram-style bot tokens in URL paths: /bot123456:ABC-DEF.../getUpdates
_BOT_PATH = re.compile(r"(?P<name>/bot)(?P<value>\d+:[A-Za-z0-9_-]{20,})")

_SHAPES = (_NAMED, _QUERY, _BEARER, _USERINFO, _BOT_PATH)


def _mask(match: re.Match[str]) -> str:
    groups = match.groupdict()
    return f"{groups['name']}{groups.get('scheme') or ''}{MARK}"


def _variants(secret: str) -> Iterable[str]:
    yield secret
    yield quote(secret, safe="")
    yield quote_plus(secret, safe="")
    yield json.dumps(secret)[1:-1]


def register_secret(value: str | SecretStr | SecretBytes | bytes | None) -> None:
    """Never show ``value`` again, anywhere scrm writes text. Idempotent; short values are ignored."""
    global _secret_pattern
    if isinstance(value, SecretStr | SecretBytes):
        value = value.get_secret_value()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    with _lock:
        fresh = {v for v in _variants(value) if len(v) >= MIN_SECRET_LENGTH} - _secrets
        if not fresh:
            return
        _secrets.update(fresh)
        ordered = sorted(_secrets, key=len, reverse=True)  # the longest form first
        _secret_pattern = re.compile("|".join(map(re.escape, ordered)))


def register_settings(settings: object) -> None:
    """Register every ``SecretStr``/``SecretBytes`` in a settings model (nested ones too)."""
    for value in _walk(settings, depth=0):
        register_secret(value)


def _walk(value: object, depth: int) -> Iterable[SecretStr | SecretBytes]:
    if depth > 20:
        return
    if isinstance(value, SecretStr | SecretBytes):
        yield value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _walk(getattr(value, name, None), depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _walk(item, depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _walk(item, depth + 1)


def redact(text: str) -> str:
    """``text`` with every registered secret and every credential shape replaced by ``[REDACTED]``."""
    if not text:
        return text
    pattern = _secret_pattern
    if pattern is not None:
        text = pattern.sub(MARK, text)
    for shape in _SHAPES:
        text = shape.sub(_mask, text)
    return text


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029]|\n")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return "\\n" if char == "\n" else f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def printable(value: object, limit: int = 80) -> str:
    """A value from outside (a request path, a header) made safe for one log line: at most
    ``limit`` characters of it, control characters escaped, the rest counted. Constant work
    whatever the value's size."""
    text = value if isinstance(value, str) else repr(value)
    head = _CONTROL.sub(_escape, text[:limit])
    return head if len(text) <= limit else f"{head}... ({len(text):,} characters)"


def _one_line(message: str) -> str:
    if len(message) > MAX_LOG_MESSAGE:
        message = f"{message[:MAX_LOG_MESSAGE]}... ({len(message) - MAX_LOG_MESSAGE:,} more characters)"
    return _CONTROL.sub(_escape, message)


def redacted_traceback(exc: BaseException) -> str:
    """The exception's traceback as text, redacted (what ``SCRM_RAISE_ERRORS=1`` prints)."""
    return redact("".join(traceback.format_exception(exc)))


# ---------------------------------------------------------------- logging


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # bad format arguments: show what there is rather than fail to log
        message = f"{record.msg!r} % {record.args!r}"
    record.msg, record.args = _one_line(redact(message)), None
    if record.exc_info and record.exc_info[1] is not None:
        record.exc_text = redacted_traceback(record.exc_info[1]).rstrip("\n")
        record.exc_info = None  # no handler may render the raw exception (its locals, its args)
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class RedactingFilter(logging.Filter):
    """The same redaction for one logger's records, for a library that logs credentials
    (tweepy logs request headers) in a process that did not :func:`scrm.logs.install_logging`::

        logging.getLogger("tweepy.client").addFilter(RedactingFilter())
    """

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True
