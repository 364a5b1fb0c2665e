"""The fake org's token endpoint: ``POST /services/oauth2/token``.

The JWT bearer flow (an RS256 assertion checked against the connected app's certificate:
``iss`` = consumer key, ``sub`` = username, ``aud``, ``exp``;
help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_jwt_flow.htm), the client
credentials flow and the legacy username-password flow; errors as
``{"error", "error_description"}`` with 400, as Salesforce answers them.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from urllib.parse import parse_qs

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["OAuthError", "OAuthServer", "make_rsa_key_pair"]


def make_rsa_key_pair() -> tuple[str, str]:
    """A throwaway RSA key pair for the JWT bearer flow: (private PEM, public PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private.decode(), public.decode()


class OAuthError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error, self.description = error, description


class OAuthServer:
    """The token endpoint of :class:`~scrm_salesforce.testing.FakeSalesforce` (a mixin)."""

    consumer_key: str
    client_secret: str
    username: str
    password: str
    jwt_public_key: str | None
    audiences: set[str]
    session_seconds: float
    clock: Callable[[], float]
    token_requests: list[str]
    _sessions: dict[str, float]
    _lock: threading.RLock

    async def _token(self, request: Request) -> Response:
        # Parsed by hand: starlette's request.form() needs python-multipart, which is not a dependency.
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode(), keep_blank_values=True).items()}
        grant = form.get("grant_type", "")
        with self._lock:
            self.token_requests.append(grant)
        try:
            if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
                self._check_assertion(form.get("assertion", ""), request)
            elif grant == "client_credentials":
                self._check_client(form.get("client_id", ""), form.get("client_secret", ""))
            elif grant == "password":
                self._check_client(form.get("client_id", ""), form.get("client_secret", ""))
                if form.get("username") != self.username or form.get("password") != self.password:
                    raise OAuthError("invalid_grant", "authentication failure")
            else:
                raise OAuthError("unsupported_grant_type", "grant type not supported")
        except OAuthError as exc:
            return JSONResponse({"error": exc.error, "error_description": exc.description}, status_code=400)
        token = "00Dfake!" + secrets.token_urlsafe(24)
        with self._lock:
            self._sessions[token] = self.clock() + self.session_seconds
        instance = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "access_token": token,
                "instance_url": instance,
                "id": f"{instance}/id/00Dfake/005fake",
                "token_type": "Bearer",
                "issued_at": str(int(self.clock() * 1000)),
                "scope": "api",
            }
        )

    def _check_client(self, client_id: str, secret: str) -> None:
        if client_id != self.consumer_key or not secrets.compare_digest(secret, self.client_secret):
            raise OAuthError("invalid_client", "invalid client credentials")

    def _check_assertion(self, assertion: str, request: Request) -> None:
        if self.jwt_public_key is None:
            raise OAuthError("invalid_grant", "no certificate is configured for this connected app")
        audiences = [*self.audiences, str(request.base_url).rstrip("/")]
        try:
            claims = jwt.decode(
                assertion,
                self.jwt_public_key,
                algorithms=["RS256"],
                audience=audiences,
                issuer=self.consumer_key,
                options={"require": ["iss", "sub", "aud", "exp"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise OAuthError("invalid_grant", "expired authorization code") from exc
        except jwt.InvalidAudienceError as exc:
            raise OAuthError("invalid_grant", "audience is invalid") from exc
        except jwt.InvalidIssuerError as exc:
            raise OAuthError("invalid_client_id", "client identifier invalid") from exc
        except jwt.PyJWTError as exc:
            raise OAuthError("invalid_grant", "invalid assertion") from exc
        if claims.get("sub") != self.username:
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")
