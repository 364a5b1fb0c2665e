"""The one redaction layer: configured secrets and credential shapes never reach a log line, an
error message, a traceback, printed output or the state store's text."""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from scrm.logs import RedactingStream, install_logging
from scrm.store import AuditEntry, NewDeadLetter, PageCommit, SqliteStore

from scrm_core import AdapterContext, FatalError, SkippableError
from scrm_core.adapters import AdapterSettings, CrmAdapter
from scrm_core.failures import item_reason
from scrm_core.redaction import MARK, printable, redact, redacted_traceback, register_secret, register_settings

SECRET = "s3cr3t-value-for-tests-91c2"


@pytest.fixture(autouse=True, scope="module")
def _registered() -> None:
    register_secret(SECRET)


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (f"GET https://api.example/bot{SECRET}/getUpdates", "https://api.example/bot"),
        ("GET https://api.telegram.org/bot123456:AAHk2Kd9-abcdefghijklmnopqrstu/sendMessage", "/sendMessage"),
        ("Authorization: Bearer eyJhbGciOi.payload.sig", "Authorization: Bearer "),
        ("{'Authorization': 'Basic dXNlcjpodW50ZXIy'}", "'Authorization': 'Basic "),
        ('{"api_key": "abcd1234efgh", "user": "x"}', '"user": "x"'),
        ("headers {'api-key': 'zzzz9999zzzz', 'api-username': 'brand'}", "'api-username': 'brand'"),
        ("https://graph.facebook.com/v21.0/me?fields=id&access_token=EAAB9x8y7z", "fields=id&access_token="),
        ("postgres://scrm:hunter22hunter@db.local/scrm", "postgres://scrm:"),
        ("x-api-key=ABCDEFGH1234 and more", "and more"),
        (f"quoted {SECRET.upper()} is another string", SECRET.upper()),  # not the secret
    ],
)
def test_credential_shapes_and_registered_secrets_are_replaced(text: str, kept: str) -> None:
    shown = redact(text)
    assert SECRET not in shown and kept in shown
    assert redact(shown) == shown  # idempotent: text may pass the layer twice


def test_the_secret_in_every_encoding_it_travels_in() -> None:
    register_secret('p@ss/word "quoted" +plus')
    for form in (
        "p%40ss%2Fword%20%22quoted%22%20%2Bplus",
        'p@ss/word \\"quoted\\" +plus',
        "p%40ss%2Fword+%22quoted%22+%2Bplus",
    ):
        assert form not in redact(f"sent {form} along"), form


def test_names_of_keys_are_not_mistaken_for_secrets() -> None:
    for text in (
        "sources[0].settings.api_key: Field required",
        "sources[0].settings.password: environment variable DB_PASSWORD is not set",
        "check the api_key and api_username settings",
    ):
        assert redact(text) == text


def test_every_secretstr_of_an_adapter_is_registered_when_it_is_built() -> None:
    class Settings(AdapterSettings):
        token: SecretStr
        nested: dict[str, SecretStr] = {}

    class Crm(CrmAdapter):
        name = "t"

        async def apply(self, ops: object) -> list[object]:  # type: ignore[override]
            return []

    Crm(Settings(token=SecretStr("built-adapter-token-1"), nested={"a": SecretStr("nested-token-22")}),
        AdapterContext(name="crm"))  # fmt: skip
    assert MARK == redact("built-adapter-token-1") == redact("nested-token-22")
    register_settings(Settings(token=SecretStr("short")))  # too short to register: would garble logs
    assert redact("short") == "short"


def test_errors_and_dead_letter_reasons_are_redacted_where_they_are_made() -> None:
    error = FatalError(f"the server said: Api-Key: {SECRET}", detail=f"token={SECRET}")
    assert SECRET not in error.operator_message and SECRET not in str(error) and SECRET not in (error.detail or "")
    assert SECRET not in item_reason(ValueError(f"cannot read with {SECRET}"))
    assert SECRET not in item_reason(SkippableError(f"refused {SECRET}"))


def test_every_log_record_and_its_traceback_is_redacted_and_one_line(caplog: pytest.LogCaptureFixture) -> None:
    install_logging()
    log = logging.getLogger("scrm.test")
    with caplog.at_level(logging.INFO):
        log.info("line one\nFORGED line %s", SECRET)
        try:
            raise RuntimeError(f"failed with {SECRET}")
        except RuntimeError:
            log.exception("boom")
        logging.getLogger("httpx").info('HTTP Request: GET %s "HTTP/1.1 200 OK"', f"https://x/bot{SECRET}/getMe")
    text = caplog.text
    assert SECRET not in text and "FORGED" in text
    first, boom, request = caplog.records
    assert "\n" not in first.getMessage() and "\\n" in first.getMessage()
    assert (
        boom.exc_info is None and boom.exc_text is not None and "RuntimeError: failed with [REDACTED]" in boom.exc_text
    )
    assert "bot[REDACTED]/getMe" in request.getMessage()


def test_printed_output_and_tracebacks_are_redacted() -> None:
    buffer = io.StringIO()
    stream = RedactingStream(buffer)  # type: ignore[arg-type]
    assert stream.write(f"token {SECRET}\n") == len(f"token {SECRET}\n")
    print(f"Authorization: Bearer {SECRET}", file=stream)  # type: ignore[arg-type]
    assert SECRET not in buffer.getvalue() and buffer.getvalue().count(MARK) == 2
    try:
        raise ValueError(SECRET)
    except ValueError as exc:
        assert SECRET not in redacted_traceback(exc)
    assert stream.isatty() is False and stream.encoding == getattr(buffer, "encoding", None)
    assert sys.stdout is not stream


def test_the_store_keeps_no_secret_in_its_text(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    store.migrate()
    store.commit_page(
        PageCommit(
            "s",
            "1",
            dead_letters=[NewDeadLetter("s", f"refused: api_key={SECRET}", "x:1", payload=f"Bearer {SECRET}")],
            audit=[AuditEntry("test", "subject", f"with {SECRET}")],
        )
    )
    store.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert SECRET.encode() not in stored and b"[REDACTED]" in stored


def test_httpx_request_logs_carry_no_token_in_a_url() -> None:
    install_logging()
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("httpx")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        transport = httpx.MockTransport(lambda request: httpx.Response(200))
        with httpx.Client(transport=transport) as client:
            client.get(f"https://api.telegram.org/bot{SECRET}/getUpdates", params={"access_token": "abcdef123456"})
    finally:
        logger.removeHandler(handler)
    assert records and all(SECRET not in r.getMessage() and "abcdef123456" not in r.getMessage() for r in records)


def test_printable_escapes_and_bounds() -> None:
    assert printable("a\r\nb\x00\u2028", 80) == "a\\x0d\\nb\\x00\\u2028"
    assert printable("x" * 1000, 10) == "xxxxxxxxxx... (1,000 characters)"
