"""An adapter that answers at once, so a benchmark measures the engine, store and scheduler."""

from __future__ import annotations

from agape_ops.engine.ports import AdapterRequest, Probe
from agape_ops.engine.results import StepResult


class InstantAdapter:
    """An adapter that answers at once, so the numbers are the engine's and the store's."""

    name = "postgres"

    async def execute(self, request: AdapterRequest) -> StepResult:
        return StepResult(summary="1 row", columns=["failed"], rows=[{"failed": 3}], total_rows=1)

    async def preview(self, request: AdapterRequest) -> StepResult | None:
        return None

    def describe(self, request: AdapterRequest) -> str:
        return "SELECT"

    async def probe(self) -> Probe:
        return Probe(name=self.name, ok=True, detail="ok")
