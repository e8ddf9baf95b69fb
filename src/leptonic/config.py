"""Settings: every environment variable Leptonic reads, declared once.

``Settings.from_environ(environ)`` takes the mapping to read, so tests pass a
plain dict and nothing reads ``os.environ`` behind the caller's back.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

from leptonic.errors import ConfigError

__all__ = ["ENVIRONMENT_VARIABLES", "Settings"]

#: Every environment variable Leptonic reads, with what it means.
ENVIRONMENT_VARIABLES: dict[str, str] = {
    "LEPTONIC_HOME": "Folder for the embedded defaults (default ~/.leptonic).",
    "LEPTONIC_DB": "Metadata store URI: sqlite:///path or postgresql://... "
    "(default sqlite:///$LEPTONIC_HOME/leptonic.db).",
    "LEPTONIC_ARTIFACTS": "Artifact store URI: file:///path, s3://bucket/prefix "
    "(?endpoint=http://host:port for S3-compatible stores) or memory:// "
    "(default file://$LEPTONIC_HOME/artifacts).",
    "LEPTONIC_COMPUTE": "Where training work runs: local:// (default, this process), "
    "local://?workers=N (N processes), ray://host:port (a Ray cluster) or ray://local.",
    "LEPTONIC_USER": "Name recorded as the actor of changes (default: the OS user).",
    "LEPTONIC_URL": "URL of a Leptonic server; when set the CLI talks to it.",
    "LEPTONIC_TOKEN": "API token for LEPTONIC_URL.",
    "LEPTONIC_WEBHOOK_HOSTS": "Hosts that alert webhooks may post to, comma-separated; "
    "*.example.com allows its subdomains (default: any host).",
}


@dataclass(frozen=True)
class Settings:
    """Where Leptonic keeps its state and who is acting.

    Parameters
    ----------
    home
        Folder for embedded defaults.
    db_uri
        Metadata store URI.
    artifacts_uri
        Artifact store URI.
    compute_uri
        Compute backend URI.
    user
        Actor recorded on changes (stage transitions, runs).
    url, token
        A server for the CLI and SDK to talk to, and its API token.
    webhook_hosts
        Host names alert webhooks may post to (``*.example.com`` allows the
        subdomains of ``example.com``); None allows any host. A server that
        workspace admins reach should set it: a webhook is posted from the
        server's network.
    """

    home: Path
    db_uri: str
    artifacts_uri: str
    compute_uri: str = "local://"
    user: str = "local"
    url: str | None = None
    token: str | None = field(default=None, repr=False)
    webhook_hosts: tuple[str, ...] | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``environ`` (``os.environ`` when omitted)."""
        env = os.environ if environ is None else environ
        unknown = sorted(
            k
            for k in env
            if k.startswith("LEPTONIC_")
            and not k.startswith("LEPTONIC_TEST_")
            and k not in ENVIRONMENT_VARIABLES
        )
        if unknown:
            known = ", ".join(sorted(ENVIRONMENT_VARIABLES))
            raise ConfigError(
                f"unknown environment variable(s) {', '.join(unknown)}; "
                f"Leptonic reads only: {known}. Unset or rename them."
            )
        try:
            home = Path(env.get("LEPTONIC_HOME") or Path.home() / ".leptonic").expanduser()
        except RuntimeError:  # "~nosuchuser/..." or no home folder to expand
            raise ConfigError(
                f"LEPTONIC_HOME {env.get('LEPTONIC_HOME', '~/.leptonic')!r} names a home folder "
                "that cannot be found; give an absolute path"
            ) from None
        home = home.absolute()
        url = env.get("LEPTONIC_URL") or None
        if url is not None:
            _check_url(url)
        return cls(
            home=home,
            # quoted: a "?", "#" or "%" in the folder's name is part of the path
            db_uri=env.get("LEPTONIC_DB") or "sqlite:///" + quote(str(home / "leptonic.db")),
            artifacts_uri=env.get("LEPTONIC_ARTIFACTS") or (home / "artifacts").as_uri(),
            compute_uri=env.get("LEPTONIC_COMPUTE") or "local://",
            user=env.get("LEPTONIC_USER") or env.get("USER") or _os_user() or "local",
            url=url,
            token=_token(env.get("LEPTONIC_TOKEN")),
            webhook_hosts=_webhook_hosts(env.get("LEPTONIC_WEBHOOK_HOSTS")),
        )

    @classmethod
    def for_home(cls, home: str | os.PathLike[str], user: str = "local") -> Settings:
        """Embedded defaults under ``home`` (SQLite + local files)."""
        return cls.from_environ({"LEPTONIC_HOME": str(home), "LEPTONIC_USER": user})


def _os_user() -> str | None:
    """The OS user's login name (``getpass.getuser``: LOGNAME, USER, LNAME, USERNAME, then
    the password database), or None where it cannot tell (e.g. a container whose uid has
    no entry)."""
    import getpass

    try:
        return getpass.getuser() or None
    except (OSError, KeyError, ImportError):
        return None


def _check_url(url: str) -> None:
    """Refuse a ``LEPTONIC_URL`` that is no http(s) address of a server."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is no number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"LEPTONIC_URL {url!r} is not a server address; give one such as "
            "http://leptonic.example:8000"
        )


def _token(value: str | None) -> str | None:
    """``LEPTONIC_TOKEN`` without surrounding whitespace (a newline from a file or a
    paste); None when empty. Whitespace or a non-ASCII character inside is refused."""
    if value is None:
        return None
    token = value.strip()
    bad = next((c for c in token if not "!" <= c <= "~"), None)
    if bad is not None:
        raise ConfigError(
            f"LEPTONIC_TOKEN holds {bad!r}, which no API token has (tokens are printable "
            "ASCII, lep_...); set it to the token exactly as `leptonic tokens create` "
            "printed it"
        )
    return token or None


def _ipv6(name: str) -> bool:
    try:
        ipaddress.IPv6Address(name)
    except ValueError:
        return False
    return True


def _webhook_hosts(value: str | None) -> tuple[str, ...] | None:
    """``LEPTONIC_WEBHOOK_HOSTS`` as lower-case host patterns; None when unset."""
    if value is None or not value.strip():
        return None
    hosts = []
    for raw in value.split(","):
        host = raw.strip().lower().rstrip(".")
        if host.startswith("[") and host.endswith("]"):  # an IPv6 address as URLs write it
            host = host[1:-1]
        name = host.removeprefix("*.")
        if not name or any(c in name for c in "/*@?#[] ") or (":" in name and not _ipv6(name)):
            raise ConfigError(
                f"LEPTONIC_WEBHOOK_HOSTS entry {raw.strip()!r} is not a host name; give host "
                "names or addresses without scheme, port or path, comma-separated, e.g. "
                "hooks.example.com,*.alerts.example.com"
            )
        hosts.append(host)
    return tuple(hosts)
