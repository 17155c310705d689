"""The base of every model in the runbook language and the team file."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Base of every model in the language: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)
