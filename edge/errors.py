"""Every way the agent can fail, as a type that carries the reason an operator reads.

Two families matter to the agent loop:

* ``UpdateRejectedError`` — the *update* is bad (forged, tampered, stale, oversize, broken model). The
  agent keeps the installed model, reports the reason in its next heartbeat and does not retry the
  same artifact in a tight loop.
* ``TransientError`` — the *link* is bad (connection refused or cut, timeout, 5xx, 429). The agent
  backs off with jitter and tries again; partial downloads are kept and resumed.

Everything else (``ConfigError``, ``OutboxFullError``) is for the person running the agent.
"""

from __future__ import annotations


class AgentError(Exception):
    """Base class: anything the agent raises on purpose."""


class ConfigError(AgentError):
    """The agent's configuration is missing a value or has a bad one."""


# --- the link -----------------------------------------------------------------------------------


class TransientError(AgentError):
    """A failure of the network or the server that may go away: back off and retry."""


class ServerUnavailableError(TransientError):
    """The server answered 5xx or 429."""

    def __init__(self, status: int, detail: str = "") -> None:
        self.status = status
        super().__init__(f"server answered HTTP {status}" + (f": {detail}" if detail else ""))


class LinkError(TransientError):
    """The connection failed, was cut, or a single read timed out."""


class RequestRejectedError(AgentError):
    """The server refused a request for a reason retrying will not fix (4xx other than 408/429)."""

    def __init__(self, status: int, detail: str = "") -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"server rejected the request with HTTP {status}: {detail or 'no detail'}")


# --- the update ---------------------------------------------------------------------------------


class UpdateRejectedError(AgentError):
    """The offered update must not be installed. ``attack`` names what the check stops."""

    attack = "unspecified"


class MalformedManifestError(UpdateRejectedError):
    attack = "hostile or corrupt metadata"


class WrongModelError(UpdateRejectedError):
    attack = "mix-and-match (a validly signed manifest for another model)"


class UnknownKeyError(UpdateRejectedError):
    attack = "forgery with a key the device does not trust"


class BadSignatureError(UpdateRejectedError):
    attack = "tampered manifest or forged signature"


class ThresholdNotMetError(UpdateRejectedError):
    attack = "compromise of fewer keys than the signing threshold"


class ExpiredManifestError(UpdateRejectedError):
    attack = "freeze (replaying old metadata so the device never hears of fixes)"


class RollbackAttackError(UpdateRejectedError):
    attack = "rollback (installing an older, possibly vulnerable, version)"


class IncompatibleModelError(UpdateRejectedError):
    attack = "bricking (a model this agent cannot run)"


class LengthMismatchError(UpdateRejectedError):
    attack = "wrong-length or truncated artifact"


class HashMismatchError(UpdateRejectedError):
    attack = "arbitrary software (tampered bytes)"


class EndlessDataError(UpdateRejectedError):
    attack = "endless data (filling the disk)"


class SlowRetrievalError(UpdateRejectedError):
    attack = "slow retrieval (holding the device on an old model)"


class SmokeTestFailedError(UpdateRejectedError):
    attack = "a broken model (signed, but does not transcribe)"


class HealthCheckFailedError(UpdateRejectedError):
    attack = "a model that fails once it is the active one"


# --- local state --------------------------------------------------------------------------------


class NoWorkingModelError(AgentError):
    """Neither slot holds a model that matches its manifest (the device needs provisioning)."""


class OutboxFullError(AgentError):
    """The outbox holds only items the policy never drops (corrections) and has no room left."""
