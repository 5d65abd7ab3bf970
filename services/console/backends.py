"""The five services' HTTP APIs, called with the signed-in user's credential.

A service that does not answer (refused connection, timeout, 5xx) raises ServiceDown: the page
says so in the part that needed it and shows everything else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx

from shared.paging import next_after

log = logging.getLogger("lindungi.console")


class ServiceDown(Exception):
    """A service did not answer usefully."""

    def __init__(self, service: str, why: str) -> None:
        super().__init__(f"{service}: {why}")
        self.service = service
        self.why = why


@dataclass
class Reply:
    """A service's answer: its status and decoded JSON body."""

    status: int
    body: Any
    next: str | None = None  # the cursor of a list's next page (its Link header), if there is one

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def errors(self) -> list[dict[str, Any]]:
        """The answer's field errors ([{'field', 'reason'}]) from its problem details (RFC 9457:
        the `errors` member, else the `detail` sentence); a body of another shape as one reason."""
        body = self.body if isinstance(self.body, dict) else {}
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return [
                {"field": str(e.get("field", "")), "reason": str(e.get("reason", ""))}
                if isinstance(e, dict)
                else {"field": "", "reason": str(e)}
                for e in errors
            ]
        if body.get("detail"):
            return [{"field": "", "reason": str(body["detail"])}]
        return [{"field": "", "reason": f"HTTP {self.status}"}]


class Backends:
    """One HTTP client for the five services."""

    def __init__(
        self, urls: dict[str, str], *, timeout: float, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.urls = urls
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def close(self) -> None:
        await self._client.aclose()

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        credential: str,
        json: Any = None,
        params: dict[str, Any] | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """Call a service as the user; ServiceDown when it cannot answer."""
        sent_headers = {"authorization": f"Bearer {credential}", **(headers or {})}
        try:
            answer = await self._client.request(
                method,
                f"{self.urls[service]}{path}",
                json=json,
                params=params,
                content=content,
                headers=sent_headers,
            )
        except httpx.HTTPError as exc:
            log.warning("service unreachable", extra={"error": f"{service} {type(exc).__name__}"})
            raise ServiceDown(service, type(exc).__name__) from None
        if answer.status_code >= 500:
            log.warning("service error", extra={"error": f"{service} {method} {answer.status_code}"})
            raise ServiceDown(service, f"HTTP {answer.status_code}")
        try:
            body = answer.json() if answer.content else None
        except ValueError:
            # not JSON (a proxy's page): its text as the problem's detail
            body = {"detail": answer.text[:500]}
        return Reply(answer.status_code, body, next_after(answer.headers.get("link")))

    async def get(self, service: str, path: str, *, credential: str, **kw: Any) -> Reply:
        return await self.call(service, "GET", path, credential=credential, **kw)

    async def post(self, service: str, path: str, *, credential: str, **kw: Any) -> Reply:
        return await self.call(service, "POST", path, credential=credential, **kw)
