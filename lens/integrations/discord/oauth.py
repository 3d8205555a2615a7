"""Discord OAuth2 (authorization code with PKCE).

Authlib builds the protocol messages (authorize URL, PKCE challenge, token request);
the requests go through the app's shared httpx client, so timeouts, the User-Agent and
test transports are the same as for every other vendor.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from lens.errors import IntegrationRejected, IntegrationUnavailable

AUTHORIZE_URL = "https://discord.com/oauth2/authorize"
TOKEN_URL = "https://discord.com/api/oauth2/token"  # noqa: S105 (a URL, not a secret)
USER_URL = "https://discord.com/api/v10/users/@me"
SCOPES = "identify email"
_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


@dataclass(frozen=True)
class DiscordUser:
    id: str
    username: str
    global_name: str | None
    avatar: str | None
    email: str | None
    verified: bool


class DiscordOAuth:
    def __init__(
        self, *, client_id: str, client_secret: str, redirect_uri: str, http: httpx.AsyncClient
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.http = http

    def authorize_url(self, *, state: str, code_verifier: str) -> str:
        return str(
            prepare_grant_uri(
                AUTHORIZE_URL,
                self.client_id,
                "code",
                redirect_uri=self.redirect_uri,
                scope=SCOPES,
                state=state,
                code_challenge=create_s256_code_challenge(code_verifier),
                code_challenge_method="S256",
            )
        )

    async def fetch_user(self, *, code: str, code_verifier: str) -> DiscordUser:
        """Exchange the code for a token and read who signed in."""
        body = prepare_token_request(
            "authorization_code",
            code=code,
            redirect_uri=self.redirect_uri,
            code_verifier=code_verifier,
            client_id=self.client_id,
            client_secret=self.client_secret,
        )
        try:
            token_response = await self.http.post(
                TOKEN_URL,
                content=body,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Accept": "application/json",
                },
                timeout=_TIMEOUT,
            )
            if token_response.status_code != 200:
                raise _status_error(token_response.status_code, "token")
            access_token = token_response.json()["access_token"]
            response = await self.http.get(
                USER_URL, headers={"Authorization": f"Bearer {access_token}"}, timeout=_TIMEOUT
            )
            if response.status_code != 200:
                raise _status_error(response.status_code, "user")
            data = response.json()
            discord_id = str(data["id"])
        except httpx.TransportError as exc:
            raise IntegrationUnavailable(f"Discord unreachable: {type(exc).__name__}") from exc
        except (ValueError, KeyError, TypeError) as exc:  # not the JSON Discord documents
            raise IntegrationUnavailable("Discord answered with something unexpected") from exc
        return DiscordUser(
            id=discord_id,
            username=data.get("username", ""),
            global_name=data.get("global_name"),
            avatar=data.get("avatar"),
            email=data.get("email"),
            verified=bool(data.get("verified")),
        )


def _status_error(status: int, step: str) -> Exception:
    if status >= 500 or status == 429:
        return IntegrationUnavailable(f"Discord's {step} endpoint answered HTTP {status}")
    return IntegrationRejected(f"Discord's {step} endpoint refused the sign-in (HTTP {status})")
