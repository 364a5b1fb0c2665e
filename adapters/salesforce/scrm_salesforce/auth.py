"""Getting an access token from ``{login_url}/services/oauth2/token``.

We ask for the token ourselves rather than through simple-salesforce's login helpers,
which build ``https://{domain}.salesforce.com`` for some flows and so cannot reach a My
Domain login URL, a proxy or a local fake. The flows:

- JWT bearer (``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``): an RS256
  assertion with ``iss`` = consumer key, ``sub`` = username, ``aud`` = login URL and a
  short ``exp`` (help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_jwt_flow.htm).
- Client credentials (``grant_type=client_credentials``) for a connected app with a run-as
  integration user (help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_client_credentials_flow.htm).
- Username-password (``grant_type=password``): legacy, kept for orgs that cannot move yet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt
import requests
from pydantic import SecretStr

from scrm_core.errors import FatalError, RetryableError

from .settings import SalesforceSettings

__all__ = ["JWT_GRANT", "Token", "request_token"]

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: Salesforce accepts assertions that expire within a few minutes.
ASSERTION_LIFETIME_SECONDS = 180

_HINTS = {
    "jwt": (
        "check consumer_key, username and that private_key_file matches the certificate uploaded to the "
        "connected app, and that the user is pre-authorized (Manage Connected Apps > Profiles / Permission Sets)"
    ),
    "client_credentials": (
        "check client_id / client_secret and that the connected app enables the Client Credentials Flow "
        "with a Run As user"
    ),
    "password": "check client_id, client_secret, username and password (+ security token)",
}


@dataclass(frozen=True)
class Token:
    access_token: SecretStr
    instance_url: str


def _form(settings: SalesforceSettings, private_key: SecretStr | None) -> dict[str, str]:
    """The token request's form fields; secrets are revealed here and nowhere else."""
    if settings.auth == "jwt":
        assert settings.consumer_key is not None and private_key is not None  # the settings validator saw to it
        claims = {
            "iss": settings.consumer_key.get_secret_value(),
            "sub": settings.username,
            "aud": settings.jwt_audience or settings.login_url.rstrip("/"),
            "exp": int(time.time()) + ASSERTION_LIFETIME_SECONDS,
        }
        assertion = jwt.encode(claims, private_key.get_secret_value(), algorithm="RS256")
        return {"grant_type": JWT_GRANT, "assertion": assertion}
    assert settings.client_id is not None and settings.client_secret is not None
    form = {
        "grant_type": settings.auth,
        "client_id": settings.client_id,
        "client_secret": settings.client_secret.get_secret_value(),
    }
    if settings.auth == "password":
        assert settings.username is not None and settings.password is not None
        form |= {"username": settings.username, "password": settings.password.get_secret_value()}
    return form


def request_token(settings: SalesforceSettings, http: requests.Session, private_key: SecretStr | None = None) -> Token:
    """Log in with the configured flow. Blocking: run it in a worker thread."""
    url = settings.login_url.rstrip("/") + "/services/oauth2/token"
    try:
        form = _form(settings, private_key)
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        raise FatalError(
            f"salesforce: could not sign the JWT assertion with private_key_file {settings.private_key_file!r}: "
            "it must be an unencrypted PEM RSA private key",
            detail=type(exc).__name__,
        ) from None
    try:
        response = http.post(url, data=form, timeout=settings.timeout_seconds)
    except requests.RequestException as exc:
        raise RetryableError(f"salesforce: login at {url} failed: {type(exc).__name__}") from None
    body = _json(response)
    if response.status_code >= 500:
        raise RetryableError(f"salesforce: login at {url} answered {response.status_code}")
    if response.status_code != 200 or "access_token" not in body:
        reason = f"{body.get('error', response.status_code)}: {body.get('error_description', '')}".strip(": ")
        raise FatalError(
            f"salesforce: login (auth = {settings.auth!r}) at {url} was refused ({reason}); {_HINTS[settings.auth]}"
        )
    instance = settings.instance_url or body.get("instance_url")
    if not instance:
        raise FatalError("salesforce: the token response has no instance_url; set instance_url in the settings")
    if not str(instance).startswith("https://"):
        raise FatalError(
            f"salesforce: the login answered instance_url {instance!r}, which is not https://; Salesforce serves "
            'its API over HTTPS only: set [crm.settings] instance_url = "https://<name>.my.salesforce.com"'
        )
    return Token(access_token=SecretStr(body["access_token"]), instance_url=str(instance).rstrip("/"))


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
