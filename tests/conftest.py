"""Fixtures shared by several test modules: release certificates and the ledger stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ledgertools import PostgresBackend, SqliteBackend
from pgtools import Cluster, find_bin_dir
from releasetools import Certified, make_certified
from telemetrytools import Backend


@pytest.fixture(scope="session")
def certified(tmp_path_factory: pytest.TempPathFactory) -> Certified:
    """Real certificates of the scripted (PASSED) and random (FAILED) weld bundles."""
    return make_certified(tmp_path_factory.mktemp("release"))


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """A throwaway PostgreSQL server for the session (one per xdist worker)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip(
            "no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql: "
            "apt-get install postgresql to run the PostgreSQL ledger cases"
        )
    cluster = Cluster(bin_dir)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> SqliteBackend | PostgresBackend:
    """The same ledger tests on each store: an SQLite file, a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return SqliteBackend(tmp_path / "ledger.sqlite")
    cluster: Cluster = request.getfixturevalue("postgres")
    return PostgresBackend(cluster.new_database())


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The same tests on an SQLite file and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "telemetry.sqlite"
        return Backend("sqlite", f"sqlite:///{path}", path)
    return Backend("postgresql", request.getfixturevalue("postgres").new_database())
