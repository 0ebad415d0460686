"""Roles, permissions and signed tokens (JWT HS256), with a revocation list. Deny by default."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import jwt

SECRET_ENV = "COMMANDHUB_SECRET"
SECRET_FILE = "secret.key"
REVOKED_FILE = "revoked.txt"
ALGORITHM = "HS256"
ANY_OPERATION = "*"


class Role(StrEnum):
    COMMANDER = "commander"
    DEPARTMENT = "department"
    EVALUATOR = "evaluator"
    OBSERVER = "observer"
    HUB = "hub"  # a town hub, a unit (its `dept`) of this hub's roster (hub/tiers/)


UNITS = frozenset({Role.DEPARTMENT, Role.HUB})  # the roles that act as a roster department


# Every action the hub performs on behalf of a client, and the roles allowed to do it.
# Anything not listed here is denied.
PERMISSIONS: dict[str, frozenset[Role]] = {
    "command.issue": frozenset({Role.COMMANDER}),
    "command.cancel": frozenset({Role.COMMANDER}),
    "command.escalate": frozenset({Role.COMMANDER}),
    "operation.start": frozenset({Role.COMMANDER}),
    "operation.end": frozenset({Role.COMMANDER}),
    "operation.pause": frozenset({Role.COMMANDER}),
    "operation.resume": frozenset({Role.COMMANDER}),
    "operation.level": frozenset({Role.COMMANDER}),
    "inject.release": frozenset({Role.COMMANDER}),
    "route.change": frozenset({Role.COMMANDER}),
    "token.revoke": frozenset({Role.COMMANDER}),
    "dept.excuse": frozenset({Role.COMMANDER}),
    "command.respond": frozenset({Role.DEPARTMENT}),
    "report.field": frozenset({Role.DEPARTMENT}),
    "dept.checkin": frozenset({Role.DEPARTMENT}),
    "observation.record": frozenset({Role.EVALUATOR}),
    "checklist.tick": frozenset({Role.EVALUATOR}),
    "video.publish": frozenset({Role.COMMANDER, Role.DEPARTMENT, Role.HUB}),  # hub: a call-up
    "video.view": frozenset({Role.COMMANDER, Role.DEPARTMENT, Role.EVALUATOR, Role.OBSERVER}),
    # WHEP: as video.view, and a town hub pulling a feed the city pushes to its town
    "video.pull": frozenset({Role.COMMANDER, Role.DEPARTMENT, Role.EVALUATOR, Role.OBSERVER,
                             Role.HUB}),
    "read.all": frozenset({Role.COMMANDER, Role.EVALUATOR, Role.OBSERVER}),
    "read.own": frozenset({Role.COMMANDER, Role.DEPARTMENT, Role.EVALUATOR, Role.OBSERVER,
                           Role.HUB}),
    "link.respond": frozenset({Role.HUB}),  # a town hub's aggregate answer to a command
    "report.score": frozenset({Role.COMMANDER, Role.EVALUATOR}),
    "scenario.read": frozenset({Role.COMMANDER, Role.EVALUATOR}),  # the injects still to come
    "replay.view": frozenset({Role.COMMANDER, Role.EVALUATOR}),  # every recording, the whole log
    "snapshot.upload": frozenset({Role.DEPARTMENT}),
}
MAX_NAME = 64  # characters in a token's `name` claim (an evaluator's name on the scorecard)


class AuthError(Exception):
    """A token is missing, invalid, expired, revoked, or not allowed to do this."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified token speaks for."""

    role: Role
    dept: str | None
    operation: str
    jti: str
    exp: int
    name: str | None = None  # who holds the token, e.g. the evaluator's name (`name` claim)

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.dept}" if self.dept else str(self.role)

    def can(self, action: str) -> bool:
        return self.role in PERMISSIONS.get(action, frozenset())

    def require(self, action: str) -> None:
        if not self.can(action):
            raise AuthError("forbidden", f"role {self.role} may not {action}")


def parse_ttl(text: str) -> int:
    """`8h`, `30m`, `90s`, `2d` -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit() or int(text[:-1]) <= 0:
        raise ValueError(f"bad ttl {text!r}: write e.g. 90s, 30m, 8h, 2d")
    return int(text[:-1]) * units[text[-1]]


def load_secret(data_dir: Path) -> bytes:
    """The signing secret: $COMMANDHUB_SECRET, else DATA/secret.key (created 0600 on first use)."""
    env = os.environ.get(SECRET_ENV)
    if env:
        if len(env) < 32:
            raise AuthError("weak_secret", f"{SECRET_ENV} must be at least 32 characters")
        return env.encode()
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    return path.read_bytes().strip()


class TokenAuthority:
    """Issues and verifies tokens with one secret."""

    def __init__(self, secret: bytes, dept_ids: set[str] | None = None) -> None:
        self._secret = secret
        self._dept_ids = dept_ids

    def issue(self, role: Role | str, *, now: int, ttl_s: int = 8 * 3600, dept: str | None = None,
              operation: str = ANY_OPERATION, name: str | None = None) -> str:
        role = Role(role)
        if name is not None:
            name = check_name(name)
        if role in UNITS and not dept:
            raise AuthError("bad_request", f"a {role} token needs --dept")
        if role is Role.COMMANDER:
            dept = dept or "center"
        if dept and self._dept_ids is not None and dept not in self._dept_ids and dept != "center":
            raise AuthError("bad_request", f"unknown department {dept!r} (valid: "
                            f"{', '.join(sorted(self._dept_ids))}; `commandhub roster` lists them)")
        claims: dict[str, Any] = {"role": str(role), "dept": dept, "op": operation,
                                  "iat": now, "nbf": now, "exp": now + ttl_s,
                                  "jti": uuid.uuid4().hex}
        if name is not None:
            claims["name"] = name
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str, *, now: int, operation: str | None = None) -> Principal:
        """Check signature, algorithm, times and scope; raise AuthError with a code."""
        if not token:
            raise AuthError("no_token", "no token given")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError("bad_token", f"malformed token: {exc}") from exc
        if header.get("alg") != ALGORITHM:
            raise AuthError("bad_token", f"token algorithm {header.get('alg')!r} not accepted")
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM],
                # Times are checked below against the hub's injected clock, not the system's.
                options={"require": ["exp", "nbf", "jti", "role"], "verify_iat": False,
                         "verify_exp": False, "verify_nbf": False},
            )
        except jwt.InvalidSignatureError as exc:
            raise AuthError("bad_signature", "token signature does not verify") from exc
        except jwt.PyJWTError as exc:
            raise AuthError("bad_token", f"invalid token: {exc}") from exc
        if claims["exp"] <= now:
            raise AuthError("expired", "token expired")
        if claims["nbf"] > now:
            raise AuthError("not_yet_valid", "token not valid yet")
        try:
            role = Role(claims["role"])
        except ValueError as exc:
            raise AuthError("bad_token", f"unknown role {claims['role']!r}") from exc
        dept = claims.get("dept")
        if role in UNITS and not dept:
            raise AuthError("bad_token", f"{role} token without a department")
        op = claims.get("op", ANY_OPERATION)
        if operation is not None and op not in (ANY_OPERATION, operation):
            raise AuthError("wrong_operation", f"token is for operation {op!r}, not {operation!r}")
        name = claims.get("name")
        if name is not None:
            try:
                name = check_name(name)
            except AuthError as exc:
                raise AuthError("bad_token", f"name claim: {exc}") from exc
        return Principal(role, dept, op, claims["jti"], claims["exp"], name)


def check_name(name: object) -> str:
    """A holder's name: 1 to MAX_NAME printable characters, spaces trimmed."""
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME \
            or not name.isprintable():
        raise AuthError("bad_request", f"name: 1 to {MAX_NAME} printable characters")
    return name.strip()


class Revocations:
    """Revoked token ids, kept in DATA/revoked.txt (one jti a line) and re-read when it changes."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / REVOKED_FILE
        self._mtime: float | None = None
        self._ids: set[str] = set()
        self.refresh()

    def refresh(self) -> bool:
        """Re-read the file if it changed; return True if the set changed."""
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            mtime = None
        if mtime == self._mtime:
            return False
        self._mtime = mtime
        old = self._ids
        self._ids = set() if mtime is None else {
            line.strip() for line in self.path.read_text().splitlines() if line.strip()
        }
        return old != self._ids

    def add(self, jti: str) -> None:
        with self.path.open("a") as f:
            f.write(jti + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.refresh()

    def __contains__(self, jti: object) -> bool:
        return jti in self._ids

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._ids))
