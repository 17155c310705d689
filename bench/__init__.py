"""Benchmarks: `make bench` (python -m bench) prints the numbers the README reports."""

import sys
from pathlib import Path

# The Slack bench drives the bot as the black-box tests do, with their fake Slack, signed
# requests and `agape-ops serve` set-up (tests/integration, tests/e2e): make those importable.
_TESTS = Path(__file__).resolve().parents[1] / "tests"
for _folder in (str(_TESTS / "integration"), str(_TESTS / "e2e")):
    if _folder not in sys.path:
        sys.path.append(_folder)
