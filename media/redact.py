"""Camera URL credentials: shown and logged only redacted (`rtsp://admin:***@cam/...`), stored once.

`redact_url` masks the password of the user-info and the values of credential-like query
parameters; `redact_text` does the same to every URL inside a message (an FFmpeg error quotes
the URL it failed to open) and masks the given secrets wherever else they appear. The real
URLs live in one file, DATA/camera-credentials.json (0600), and in the ingest that uses them;
a URL given back in its redacted form (a roster edited after the first run, the console
re-starting an ingest) is resolved from that file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

MASK = "***"
CREDENTIALS_FILE = "camera-credentials.json"
# query parameters whose values are secrets (compared lower-case, "-" read as "_")
SECRET_PARAMS = frozenset({
    "password", "passwd", "pwd", "pass", "pw", "passphrase", "token", "access_token", "auth",
    "authorization", "auth_token", "key", "apikey", "api_key", "secret", "client_secret",
    "signature", "sig", "credential", "credentials", "session", "sessionid", "user_password",
})
_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{1,15}://[^\s'\"<>]+")
_PARAM_RE = re.compile(r"(?i)\b(" + "|".join(sorted(SECRET_PARAMS, key=len, reverse=True))
                       + r")([=:]\s*)([^\s&'\"<>;,]+)")


class CredentialStoreError(Exception):
    """DATA/camera-credentials.json cannot be read or written."""


def _secret_param(name: str) -> bool:
    return name.lower().replace("-", "_") in SECRET_PARAMS


def redact_url(url: str) -> str:
    """`url` with its password and credential query values replaced by `***`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if parts.password is not None or parts.username is not None:
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        hostport = f"{host}:{port}" if port is not None else host
        user = parts.username or ""
        netloc = f"{user}:{MASK}@{hostport}" if parts.password is not None else f"{user}@{hostport}"
    query = parts.query
    if query:
        pieces = []
        for piece in query.split("&"):
            name, eq, _ = piece.partition("=")
            pieces.append(f"{name}={MASK}" if eq and _secret_param(unquote(name)) else piece)
        query = "&".join(pieces)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def url_secrets(url: str) -> list[str]:
    """The secret values inside `url` (password, credential query values), raw and decoded."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = []
    if parts.password:
        found.append(parts.password)
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=False) if _secret_param(k)]
    out: set[str] = set()
    for s in found:
        out |= {s, unquote(s), quote(s, safe="")}
    return sorted((s for s in out if len(s) >= 3), key=len, reverse=True)


def has_credentials(url: str) -> bool:
    return redact_url(url) != url


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every URL redacted, `password=...`-style values masked, and each of
    `secrets` masked wherever it still appears."""
    out = _URL_RE.sub(lambda m: redact_url(m.group(0)), text)
    out = _PARAM_RE.sub(lambda m: m.group(1) + m.group(2) + MASK, out)
    for s in sorted(set(secrets), key=len, reverse=True):
        if len(s) >= 3:
            out = out.replace(s, MASK)
    return out


class CredentialStore:
    """Real camera URLs per department, in DATA/camera-credentials.json (0600, rewritten
    atomically). Only URLs that carry credentials are kept."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / CREDENTIALS_FILE

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise CredentialStoreError(f"{self.path}: {exc}") from exc
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise CredentialStoreError(f"{self.path}: expected an object of URL strings")
        return data

    def remember(self, dept: str, url: str) -> None:
        """Keep `url` for `dept` if it carries credentials (replacing an older one)."""
        if not has_credentials(url):
            return
        data = self._load()
        if data.get(dept) == url:
            return
        data[dept] = url
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, ensure_ascii=False, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            raise CredentialStoreError(f"{self.path}: cannot store the camera URL: {exc}") from exc

    def resolve(self, dept: str, url: str) -> str:
        """The stored real URL if `url` is its redacted form; else `url` unchanged."""
        if MASK not in url:
            return url
        stored = self._load().get(dept)
        return stored if stored is not None and redact_url(stored) == url else url
