"""Discord OAuth2 (authorization code with PKCE).

Authlib builds the protocol messages (authorize URL, PKCE challenge, token request);
the requests go through the app's shared httpx client, so timeouts and test transports
are the same as for every other vendor; the User-Agent is the bot's, in the form Discord
requires of every API client ("DiscordBot ($url, $versionNumber)"), not the app's.

Rate limits: these requests are the signing-in person's (a Bearer token, limited per
user, not per bot), so the bot's buckets and global pause do not apply to them. Discord's
invalid-request ban is per IP address, though: their 401/403/429 answers count in the
process's RateLimits, and a sign-in is held only at its hard limit (ratelimit.py).

The token endpoint answers errors as OAuth 2.0 does (RFC 6749, section 5.2):
`{"error": "invalid_grant", "error_description": "Invalid \"code\" in request."}`.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.integrations.discord.ratelimit import RateLimits, process_limits
from lens.integrations.discord.rest import USER_AGENT

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
        self,
        *,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        http: httpx.AsyncClient,
        limits: RateLimits | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.http = http
        self.limits = limits if limits is not None else process_limits()

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
            self.limits.check_budget(essential=True)
            token_response = await self.http.post(
                TOKEN_URL,
                content=body,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Accept": "application/json",
                    "User-Agent": USER_AGENT,
                },
                timeout=_TIMEOUT,
            )
            self.limits.note(token_response)
            if token_response.status_code != 200:
                raise _status_error(token_response, "token")
            access_token = token_response.json()["access_token"]
            self.limits.check_budget(essential=True)
            response = await self.http.get(
                USER_URL,
                headers={"Authorization": f"Bearer {access_token}", "User-Agent": USER_AGENT},
                timeout=_TIMEOUT,
            )
            self.limits.note(response)
            if response.status_code != 200:
                raise _status_error(response, "user")
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


def _status_error(response: httpx.Response, step: str) -> Exception:
    status = response.status_code
    if status >= 500 or status == 429:
        return IntegrationUnavailable(f"Discord's {step} endpoint answered HTTP {status}")
    return IntegrationRejected(
        f"Discord's {step} endpoint refused the sign-in (HTTP {status}{_why(response)})"
    )


def _why(response: httpx.Response) -> str:
    """The token endpoint's OAuth error code or the API's JSON message, if any."""
    try:
        data = response.json()
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    reason = data.get("error") or data.get("message")
    return f": {reason}" if isinstance(reason, str) and reason else ""
