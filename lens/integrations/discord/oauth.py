"""Discord OAuth2 (authorization code with PKCE), through Authlib's httpx client."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import authlib.deprecate  # noqa: F401 (installs an "always" filter; ours must come after)
import httpx
from authlib.common.errors import AuthlibBaseError

with warnings.catch_warnings():
    # Authlib 1.9 nudges towards the "httpx2" package; its httpx client is what we pin
    # and test (requirements/*.lock).
    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import AsyncOAuth2Client

from lens.errors import IntegrationRejected, IntegrationUnavailable

AUTHORIZE_URL = "https://discord.com/oauth2/authorize"
TOKEN_URL = "https://discord.com/api/oauth2/token"  # noqa: S105 (a URL, not a secret)
USER_URL = "https://discord.com/api/v10/users/@me"
SCOPES = "identify email"


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
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.transport = transport

    def _client(self) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            self.client_id,
            self.client_secret,
            scope=SCOPES,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_post",  # noqa: S106
            transport=self.transport,
            timeout=httpx.Timeout(10.0, connect=5.0),
        )

    def authorize_url(self, *, state: str, code_verifier: str) -> str:
        client = self._client()
        url, _ = client.create_authorization_url(
            AUTHORIZE_URL, state=state, code_verifier=code_verifier
        )
        return str(url)

    async def fetch_user(self, *, code: str, code_verifier: str) -> DiscordUser:
        """Exchange the code for a token and read who signed in."""
        try:
            async with self._client() as client:
                await client.fetch_token(TOKEN_URL, code=code, code_verifier=code_verifier)
                response = await client.get(USER_URL)
                if response.status_code != 200:
                    raise _status_error(response.status_code, "user")
                data = response.json()
                discord_id = str(data["id"])
        except httpx.TransportError as exc:
            raise IntegrationUnavailable(f"Discord unreachable: {type(exc).__name__}") from exc
        except httpx.HTTPStatusError as exc:
            raise _status_error(exc.response.status_code, "token") from exc
        except AuthlibBaseError as exc:
            raise IntegrationRejected(f"Discord refused the sign-in: {exc.error}") from exc
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
