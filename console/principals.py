"""Who may sign in to the console, and what a principal's view reads. Pure.

Three kinds of principal sign in: a partner's liaison officers (``partner-<code>``, a partner of
deploy/topics.yaml), one of our components (``component-<name>``) and operations (``operations``). Every other
user - the super user ``admin``, the services' principals - is refused even with the right password: the console
never holds a session with more rights than a person at a screen should have.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from core import topics

__all__ = ["OFFICER", "COMPONENT", "OPERATIONS", "OPERATIONS_PRINCIPAL", "Principal", "SignInRefused",
           "principal_of"]

OFFICER, COMPONENT, OPERATIONS = "officer", "component", "operations"
OPERATIONS_PRINCIPAL = "operations"
_PARTNER = re.compile(r"^partner-([a-z]{3})$")
_COMPONENT = re.compile(r"^component-([a-z][a-z0-9]{1,15})$")


class SignInRefused(ValueError):
    """A user the console does not serve (the message says why)."""


@dataclass(frozen=True)
class Principal:
    name: str
    kind: str
    #: the partner code (RUS) or component name (naval) whose feed the principal reads; None for operations
    recipient: str | None

    @property
    def feed_prefix(self) -> str | None:
        """Prefix of the feed topics the principal's view reads (its ACLs allow READ there and nowhere else)."""
        return None if self.recipient is None else topics.recipient_prefix(self.recipient)

    @property
    def client_group(self) -> str:
        """The group id of the session's consumer. It never joins nor commits (the console reads by assignment),
        but a consumer with a group id looks up its coordinator, for which the broker wants DESCRIBE on the
        group: within the principal's own group prefix (officers, components), or ``liaison.console.``
        (operations, deploy/acls.yaml)."""
        prefix = self.feed_prefix or "liaison.console."
        return f"{prefix}console-{uuid.uuid4().hex[:12]}"

    @property
    def title(self) -> str:
        if self.kind == OFFICER:
            return f"{self.recipient} liaison officer"
        if self.kind == COMPONENT:
            return f"{self.recipient} component"
        return "operations"


def principal_of(username: str, partners: frozenset[str] | set[str], components: frozenset[str] | set[str]
                 ) -> Principal:
    """The console's principal for ``username``; raises :class:`SignInRefused` for a user it does not serve."""
    name = username.strip()
    if name == OPERATIONS_PRINCIPAL:
        return Principal(name, OPERATIONS, None)
    m = _PARTNER.match(name)
    if m and m.group(1).upper() in partners:
        return Principal(name, OFFICER, m.group(1).upper())
    m = _COMPONENT.match(name)
    if m and m.group(1) in components:
        return Principal(name, COMPONENT, m.group(1))
    raise SignInRefused(f"{name!r} cannot sign in to the console: it serves partner officers (partner-<code>), "
                        f"components (component-<name>) and operations")
