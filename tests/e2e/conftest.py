"""The black-box tier: the `agape-ops` command run as a person runs it, in subprocesses.

These tests share the loopback fakes of the integration tier (Paystack, the admin API), so
that folder is importable here; the scratch database fixtures come from the root conftest.
"""

from __future__ import annotations

import sys
from pathlib import Path

INTEGRATION = str(Path(__file__).resolve().parents[1] / "integration")
if INTEGRATION not in sys.path:
    sys.path.insert(0, INTEGRATION)
