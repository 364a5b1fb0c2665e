"""scrm-localcrm: an embedded CRM on SQLite, so anyone can try scrm with no account anywhere.

    [crm]
    adapter = "localcrm"
    [crm.settings]
    path = "crm.db"

Look inside with ``scrm localcrm show``; write a reply as an agent would with
``scrm localcrm reply <case or conversation key> "text"``; correct a label as an agent
would with ``scrm localcrm label <message or case> complaint``.
"""

from __future__ import annotations

from .adapter import LocalCrm, check_database
from .db import LocalCrmReader, add_label_correction, add_reply, mark_reply_failed, mark_reply_sent

__all__ = [
    "LocalCrm",
    "LocalCrmReader",
    "add_label_correction",
    "add_reply",
    "check_database",
    "mark_reply_failed",
    "mark_reply_sent",
]
