"""Checks on an adapter's ``Settings`` model that every conformance suite shares."""

from __future__ import annotations

import re
import types
import typing
from typing import Any

from pydantic import BaseModel, SecretStr

__all__ = ["looks_secret", "secrets_not_secretstr"]

#: Endings of a name's last ``_``-part that mean a secret (``api_key``, ``access_token``).
_SECRET_ENDINGS = ("token", "secret", "password", "passphrase", "key", "credentials")
#: Words that mean a secret anywhere in the name (``token_url`` is flagged: better one
#: SecretStr too many than a credential printed in a log).
_SECRET_WORDS = re.compile(r"token|secret|password|passphrase|credential|(^|_)(api)?key$", re.IGNORECASE)


def looks_secret(field_name: str) -> bool:
    """Whether a settings field's name says it holds a secret."""
    return bool(_SECRET_WORDS.search(field_name)) or field_name.lower().rsplit("_", 1)[-1].endswith(_SECRET_ENDINGS)


def _is_secret_type(annotation: Any) -> bool:
    """SecretStr, or an optional / union whose every non-None member is SecretStr."""
    if annotation is SecretStr:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return bool(members) and all(_is_secret_type(a) for a in members)
    return False


def secrets_not_secretstr(settings: type[BaseModel]) -> list[str]:
    """Fields whose name looks secret but whose type is not SecretStr, as readable problems."""
    return [
        f"setting {name!r} looks like a secret but is typed {info.annotation!r}; use pydantic.SecretStr"
        for name, info in settings.model_fields.items()
        if looks_secret(name) and not _is_secret_type(info.annotation)
    ]
