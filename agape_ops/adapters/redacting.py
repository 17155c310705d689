"""Every adapter as the engine sees it: wrapped so nothing it returns, says or raises carries a
configured secret (the composition root wraps each one)."""

from __future__ import annotations

import dataclasses

from agape_ops.engine.ports import Adapter, AdapterRequest, Probe
from agape_ops.engine.results import StepResult
from agape_ops.errors import AgapeError
from agape_ops.redaction import Redactor


class RedactingAdapter:
    """An Adapter that redacts everything the adapter it wraps returns, says or raises."""

    def __init__(self, inner: Adapter, redactor: Redactor) -> None:
        self.inner = inner
        self.name = inner.name
        self._redactor = redactor

    async def execute(self, request: AdapterRequest) -> StepResult:
        """Run the inner adapter; redact its result or its error."""
        try:
            result = await self.inner.execute(request)
        except AgapeError as exc:
            redacted = self._redactor.exception(exc)
            if redacted is exc:
                raise
            raise redacted from exc
        return self._redactor.result(result)

    async def preview(self, request: AdapterRequest) -> StepResult | None:
        """Preview through the inner adapter; redact what it shows."""
        try:
            result = await self.inner.preview(request)
        except AgapeError as exc:
            redacted = self._redactor.exception(exc)
            if redacted is exc:
                raise
            raise redacted from exc
        return None if result is None else self._redactor.result(result)

    def describe(self, request: AdapterRequest) -> str:
        """Describe through the inner adapter, redacted."""
        return self._redactor.text(self.inner.describe(request))

    async def probe(self) -> Probe:
        """Probe through the inner adapter; redact its detail."""
        found = await self.inner.probe()
        return dataclasses.replace(found, detail=self._redactor.text(found.detail))
