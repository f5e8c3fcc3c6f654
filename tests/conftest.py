"""Fixtures shared by several test modules."""

from __future__ import annotations

import pytest
from releasetools import Certified, make_certified


@pytest.fixture(scope="session")
def certified(tmp_path_factory: pytest.TempPathFactory) -> Certified:
    """Real certificates of the scripted (PASSED) and random (FAILED) weld bundles."""
    return make_certified(tmp_path_factory.mktemp("release"))
