"""Commands for whoever runs the platform: the server, the database, users and tokens.

``server`` and ``db upgrade`` act on the stores named by the environment (they are
the server's side). ``users`` and ``tokens`` act on those stores too or, with
``LEPTONIC_URL`` set, on that server through its API (like the other commands).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from leptonic.cli._render import console, err_console, table
from leptonic.config import Settings
from leptonic.platform import Platform

if TYPE_CHECKING:
    from leptonic.sdk import Client

__all__ = ["register_admin_commands"]

db_app = typer.Typer(help="The metadata database.", no_args_is_help=True)
users_app = typer.Typer(
    help="Users (local stores, or the server named by LEPTONIC_URL).", no_args_is_help=True
)
tokens_app = typer.Typer(
    help="API tokens (local stores, or the server named by LEPTONIC_URL).", no_args_is_help=True
)


def register_admin_commands(app: typer.Typer) -> None:
    """Add ``server``, ``db``, ``users`` and ``tokens`` to ``app``."""
    app.command("server")(server)
    app.add_typer(db_app, name="db")
    app.add_typer(users_app, name="users")
    app.add_typer(tokens_app, name="tokens")


def _open() -> Platform | Client:
    """The local platform, or the server named by LEPTONIC_URL when it is set."""
    settings = Settings.from_environ()
    if settings.url:
        from leptonic.sdk import Client

        return Client.from_settings(settings)
    return Platform.open(settings)


# -- database -------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the metadata database to the current schema."""
    from leptonic.storage.metadata.migrate import current_revision, upgrade

    settings = Settings.from_environ()
    upgrade(settings.db_uri)
    console.print(f"metadata database at revision {current_revision(settings.db_uri)}")


# -- server, users and tokens ---------------------------------------------------------
def server(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=0, help="Background job worker threads.")] = 2,
    max_upload_mb: Annotated[int, typer.Option(help="Largest dataset upload, MiB.")] = 5120,
) -> None:
    """Run the platform server (REST API under /api/v1, docs at /docs)."""
    import uvicorn

    from leptonic.api import create_app

    api = create_app(
        Settings.from_environ(), workers=workers, max_upload_bytes=max_upload_mb * 1024**2
    )
    uvicorn.run(api, host=host, port=port, log_level="info")


@users_app.command("create")
def users_create(
    name: str,
    admin: Annotated[bool, typer.Option(help="A platform admin.")] = False,
    display_name: Annotated[str, typer.Option(help="Full name.")] = "",
) -> None:
    """Create a user."""
    with _open() as lp:
        user = lp.create_user(name, admin=admin, display_name=display_name)
    console.print(f"created user [bold]{user.name}[/bold]" + (" (admin)" if user.is_admin else ""))


@users_app.command("list")
def users_list() -> None:
    """List users."""
    with _open() as lp:
        rows = [(u.name, u.display_name, u.is_admin, u.created_at) for u in lp.list_users()]
    console.print(table("Users", ["name", "display name", "admin", "created"], rows))


@tokens_app.command("create")
def tokens_create(
    user: str,
    name: Annotated[str, typer.Option(help="What the token is for.")] = "default",
    expires_in_days: Annotated[float | None, typer.Option(help="Lifetime in days.")] = None,
) -> None:
    """Create an API token and print its secret (shown only this once)."""
    with _open() as lp:
        token, secret = lp.create_token(user, name, expires_in_days=expires_in_days)
    err_console.print(f"token {token.id} for {token.user}; keep the secret, it is not shown again:")
    print(secret)


@tokens_app.command("list")
def tokens_list(user: str) -> None:
    """List a user's tokens (without secrets)."""
    with _open() as lp:
        rows = [
            (t.id, t.name, t.prefix, t.created_at, t.expires_at, t.revoked_at)
            for t in lp.list_tokens(user)
        ]
    console.print(
        table(f"Tokens of {user}", ["id", "name", "prefix", "created", "expires", "revoked"], rows)
    )


@tokens_app.command("revoke")
def tokens_revoke(token_id: str) -> None:
    """Revoke a token."""
    with _open() as lp:
        token = lp.revoke_token(token_id)
    console.print(f"revoked token {token.id} of {token.user}")


# -- demo -----------------------------------------------------------------------
