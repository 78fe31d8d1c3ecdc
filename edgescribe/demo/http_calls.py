"""Plain HTTP calls to the local API, as an app or a script makes them (urllib: no extra package).

The demo shows what goes over the wire — method, path, status, problem detail — so failures are
returned as replies, not raised: a 401 is something the demo wants to print.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from edgescribe.demo.steps import DemoStepError


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise DemoStepError(f"reply is not JSON: {self.body[:120]!r}") from exc

    @property
    def detail(self) -> str:
        """A problem+json reply's ``detail`` (or title), else the start of the body."""
        try:
            problem = json.loads(self.body)
        except ValueError:
            return self.body[:200].decode("utf-8", errors="replace")
        if isinstance(problem, dict):
            return str(problem.get("detail") or problem.get("title") or problem)
        return str(problem)


def call(
    method: str,
    url: str,
    *,
    token: str | None = None,
    body: bytes | None = None,
    json_body: Any = None,
    content_type: str | None = None,
    timeout: float = 60.0,
) -> HttpReply:
    """One request; any HTTP status comes back as a reply, a dead link as ``DemoStepError``."""
    if json_body is not None:
        body = json.dumps(json_body).encode()
        content_type = "application/json"
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - 127.0.0.1
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return HttpReply(int(response.status), response.read())
    except urllib.error.HTTPError as exc:
        return HttpReply(int(exc.code), exc.read())
    except (urllib.error.URLError, OSError) as exc:
        raise DemoStepError(f"{method} {url} failed: {exc}") from exc


def expect(reply: HttpReply, status: int, what: str) -> Any:
    """The reply's JSON if it has ``status``; otherwise the step fails, naming the request."""
    if reply.status != status:
        raise DemoStepError(f"{what}: expected HTTP {status}, got {reply.status}: {reply.detail}")
    return reply.json()
