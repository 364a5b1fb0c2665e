"""The command's doors to the core's redaction (:mod:`scrm_core.redaction`): every log record
of the process redacted as it is created, and stdout and stderr wrapped, so prints, rich
consoles, warnings and tracebacks (threads' too) go through :func:`~scrm_core.redaction.redact`."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable
from typing import IO, Any, TextIO

from scrm_core.redaction import RedactingFilter, redact, redacted_traceback

__all__ = ["RedactingStream", "install_logging", "install_streams"]

_lock = threading.Lock()
_filter = RedactingFilter()

_installed_factory = False


def install_logging() -> None:
    """Redact every log record of the process as it is created (idempotent)."""
    global _installed_factory
    with _lock:
        if _installed_factory:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _filter.filter(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed_factory = True


# ---------------------------------------------------------------- stdout and stderr


class RedactingStream:
    """A text stream that redacts what is written to it, then passes it on."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def install_streams() -> None:
    """Wrap ``sys.stdout`` and ``sys.stderr`` (idempotent): prints, rich consoles, warnings and
    tracebacks all go through :func:`redact`. Uncaught exceptions in threads too."""
    for name in ("stdout", "stderr"):
        stream: IO[str] | None = getattr(sys, name)
        if stream is not None and not isinstance(stream, RedactingStream):
            setattr(sys, name, RedactingStream(stream))  # type: ignore[arg-type]

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            sys.stderr.write(f"exception in thread {args.thread.name if args.thread else '?'}:\n")
            sys.stderr.write(redacted_traceback(args.exc_value))

    threading.excepthook = thread_hook
