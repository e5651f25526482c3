"""Which daemons take part in a cluster: PostgreSQL with ``[cluster] enabled`` only; SQLite stays one instance."""

from __future__ import annotations

from pathlib import Path

from calld.adapters.freeswitch.adapter import FreeswitchAdapter
from calld.adapters.freeswitch.settings import FreeswitchConfig
from calld.config import ClusterConfig, Config, DatabaseConfig
from calld.daemon import Daemon
from calld.storage.database import Database
from tests.support import PG_URL


def daemon(url: str, **cluster: object) -> Daemon:
    fs = FreeswitchConfig(host="127.0.0.1", port=1, password="ClueCon")
    config = Config(database=DatabaseConfig(url=url), cluster=ClusterConfig(**cluster), freeswitch=fs)  # type: ignore[arg-type]
    return Daemon(config, switch=FreeswitchAdapter(fs))


async def test_sqlite_has_no_election_and_a_local_feed(tmp_path: Path) -> None:
    made = daemon(f"sqlite:///{tmp_path / 'one.db'}")
    try:
        assert made.cluster is None and made.elector is None and made.live.relay is None
        assert made.services.switch is made.switch  # control goes to the adapter, as ever
        assert made.ingest is not None and made.ingest.fence is None
    finally:
        await made.db.close()


async def test_postgresql_elects_unless_disabled(pg: Database) -> None:
    clustered = daemon(PG_URL, instance_id="here")
    alone = daemon(PG_URL, enabled=False)
    try:
        assert clustered.cluster is not None and clustered.elector is not None
        assert clustered.cluster.instance_id == "here" and clustered.live.relay is clustered.cluster.feed
        assert clustered.ingest is not None and clustered.ingest.fence == clustered.elector.fence
        assert alone.cluster is None and alone.elector is None and alone.services.switch is alone.switch
    finally:
        await clustered.db.close()
        await alone.db.close()
