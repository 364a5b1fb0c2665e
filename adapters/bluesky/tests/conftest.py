"""Makes ``bluesky_testkit`` importable (pytest runs with --import-mode=importlib) and shares its fixtures."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bluesky_testkit import loaded, served

__all__ = ["loaded", "served"]
