"""Shared fixtures. Tests run on CPU; multi-device tests set XLA_FLAGS in their own subprocess."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("JAX_PLATFORMS", "cpu")
