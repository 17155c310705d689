"""Read an Atlassian Statuspage (Paystack's public status page): its indicator and incidents.

Public and unauthenticated: no key is ever sent here. ``/api/v2/status.json`` gives
``status.indicator`` (none, minor, major, critical); ``/api/v2/incidents/unresolved.json`` the
open incidents.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from agape_ops.adapters.httpclient import (
    Sleep,
    decode_object,
    get_with_retry,
    shape_error,
    unexpected_status,
)
from agape_ops.engine.results import StepResult, table

INDICATORS: dict[str, str] = {
    "none": "operational",
    "minor": "minor issues",
    "major": "major outage",
    "critical": "critical outage",
}
INCIDENT_COLUMNS = ["name", "impact", "status", "started_at", "shortlink"]


def indicator_words(indicator: str) -> str:
    """Say what an indicator means; an unknown one is shown as it came."""
    return INDICATORS.get(indicator, f"unknown ({indicator})")


class StatusPage:
    """One Statuspage at ``base_url``, named ``system`` in messages ("Paystack's status page")."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        *,
        system: str,
        adapter: str,
        max_retries: int,
        sleep: Sleep,
    ) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._system = system
        self._adapter = adapter
        self._max_retries = max_retries
        self._sleep = sleep

    def urls(self) -> tuple[str, str]:
        """Return the two URLs read, for describe()."""
        return (
            f"{self._base_url}/api/v2/status.json",
            f"{self._base_url}/api/v2/incidents/unresolved.json",
        )

    async def _json(self, url: str, retries: int) -> tuple[httpx.Response, dict[str, Any]]:
        response = await get_with_retry(
            self._client,
            url,
            system=self._system,
            adapter=self._adapter,
            max_retries=retries,
            sleep=self._sleep,
        )
        if response.status_code != 200:
            raise unexpected_status(response, system=self._system, adapter=self._adapter)
        return response, decode_object(response, system=self._system, adapter=self._adapter)

    async def indicator(self, *, retries: int | None = None) -> tuple[str, str]:
        """Return ``(indicator, description)`` from status.json."""
        attempts = self._max_retries if retries is None else retries
        response, body = await self._json(self.urls()[0], attempts)
        status = body.get("status")
        if not isinstance(status, dict) or "indicator" not in status:
            raise shape_error(
                response,
                system=self._system,
                adapter=self._adapter,
                detail="no `status.indicator`",
            )
        return str(status["indicator"]), str(status.get("description") or "")

    async def incidents(self) -> list[dict[str, Any]]:
        """Return one row per unresolved incident."""
        response, body = await self._json(self.urls()[1], self._max_retries)
        incidents = body.get("incidents")
        if not isinstance(incidents, list):
            raise shape_error(
                response, system=self._system, adapter=self._adapter, detail="no `incidents`"
            )
        return [
            {
                "name": str(item.get("name") or "(unnamed incident)"),
                "impact": _text(item.get("impact")),
                "status": _text(item.get("status")),
                "started_at": _text(item.get("started_at") or item.get("created_at")),
                "shortlink": _text(item.get("shortlink")),
            }
            for item in incidents
            if isinstance(item, dict)
        ]

    async def result(self, subject: str) -> StepResult:
        """Read both and state them: "<subject> status: major outage — 2 open incidents: ..."."""
        (indicator, description), rows = await asyncio.gather(self.indicator(), self.incidents())
        names = [row["name"] for row in rows]
        summary = f"{subject} status: {indicator_words(indicator)}"
        if names:
            plural = "incident" if len(names) == 1 else "incidents"
            summary += f" — {len(names)} open {plural}: {', '.join(names)}"
        else:
            summary += " — no open incidents"
        return table(
            summary,
            INCIDENT_COLUMNS,
            rows,
            values={
                "indicator": indicator,
                "description": description,
                "incidents": names,
                "incident_count": len(names),
            },
        )


def _text(value: object) -> str | None:
    return None if value is None or value == "" else str(value)
