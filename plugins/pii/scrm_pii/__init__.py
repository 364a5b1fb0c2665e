"""PII redaction for scrm: card numbers, phone numbers and email addresses masked in message text."""

from .cards import find_cards, luhn_valid
from .redact import DEFAULT_PHONE_REGIONS, Redaction, Redactor, Settings

__version__ = "0.1.0"
__all__ = ["DEFAULT_PHONE_REGIONS", "Redaction", "Redactor", "Settings", "find_cards", "luhn_valid"]
