"""The signed rollback directive: the only thing that lets a device install an *older* model.

A device refuses a manifest whose version is not greater than the installed one (anti-rollback:
otherwise an attacker replays an old, validly signed, vulnerable model). When operators withdraw a
bad version, devices running it need a way down that an attacker cannot forge or replay. The
directive is that way:

- it names the versions it withdraws (``revoked_versions``) and the one to return to (``to_version``);
- it is signed with the same Ed25519 key as the manifests, over its canonical form (every field but
  ``signatures``, keys sorted, no whitespace: the rule ``ModelManifest.canonical_bytes`` uses);
- it expires (``expires_at``), and ``refresh`` re-signs it while it is still in force.

Shared by the distribution service (which signs it) and the edge agent (which verifies it), so the
two can never disagree on its fields or its signed bytes.

A device accepts a rollback only when, in this order:

1. at least ``threshold`` signatures verify with its pinned keys;
2. ``expires_at`` is in the future;
3. ``name`` is the model it runs and its installed version is in ``revoked_versions``;
4. the offered manifest's version equals ``to_version`` (and that manifest verifies as usual).

Rule 3 stops replay: a directive that withdrew version 5 cannot push a device running version 8
(published later) back to 4.

Example::

    directive = RollbackDirective(name="edgescribe-edge", to_version=4, revoked_versions=[5],
                                  issued_at=now, expires_at=now + timedelta(days=30), reason="CER")
    signed = signer.sign_directive(directive)
    signed.permits(installed=5, offered=4)   # True
    signed.permits(installed=8, offered=4)   # False: 8 was never withdrawn
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import ConfigDict, Field

from models.runtime.manifest import SignedModel

if TYPE_CHECKING:
    pass


class RollbackDirective(SignedModel):
    """Operators' signed permission to move devices from ``revoked_versions`` to ``to_version``."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["rollback"] = "rollback"
    name: str
    to_version: int = Field(ge=1)
    revoked_versions: list[int] = Field(min_length=1)
    issued_at: datetime
    expires_at: datetime
    reason: str = ""

    def permits(self, *, installed: int | None, offered: int) -> bool:
        """Whether this directive moves a device running ``installed`` to ``offered``.

        Only the version rules (3 and 4 above); signatures and expiry are checked separately.
        """
        return (
            installed is not None
            and installed in self.revoked_versions
            and offered == self.to_version
        )
