"""Three replicas on one Pardot account, as a deployment runs them: a redis-server of the
cluster's own (on a free loopback port, with AOF, the recommended setting), a fakepardot
over real HTTP, and three ``prospect-sync serve`` processes with ``state = "redis"`` on
one key prefix, each on a free port of its own (tests/e2e/test_cluster.py).

The cluster is costly to start (three Python processes), so a test module starts it
once and :meth:`Cluster.fresh` gives each test a clean one: a fresh fake, an empty Redis
(FLUSHDB, with nothing in flight) and every replica running, a killed one started again.
Every process is stopped by its own handle, never by name, in :func:`running_cluster`'s
``finally``; every wait is bounded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from bench.processes import Child, _prospect_sync, _spawn, free_port, wait_serving
from fakepardot import DEMO, FakePardot
from support.redis_server import LOOPBACK, RedisServer, redis_server_binary

REPLICAS = 3
KEY_PREFIX = "cluster:"
#: AOF with a write per command: a Redis killed and restarted keeps every record (what
#: the README recommends), so the outage test can show that nothing is duplicated.
PERSISTENT = ("--appendonly", "yes", "--appendfsync", "always")


def replica_config(fake: FakePardot, redis_url: str, state_dir: Path) -> str:
    """The v4 OAuth connection (``default``, a refresh-token grant) to the fake, the
    state in Redis; retries and backoffs small, as in tests/support/service.py."""
    return f"""[server]
listen = "{LOOPBACK}:0"
state_dir = "{state_dir}"
state = "redis"
log_level = "warning"
shutdown_grace_s = 1.0

[redis]
url = "{redis_url}"
key_prefix = "{KEY_PREFIX}"

[connections.default]
pardot_url = "{fake.url}"
api_version = 4
business_unit_id = "{DEMO.business_unit_v4}"
auth = "oauth"
token_url = "{fake.token_url}"
grant_type = "refresh_token"
client_id = "{DEMO.client_id}"
client_secret = "{DEMO.client_secret}"
refresh_token = "{DEMO.refresh_token}"
timeout_s = 5.0
backoff_base_s = 0.01
backoff_max_s = 0.05
"""


@dataclass
class Replica:
    """One ``prospect-sync serve`` of the cluster: its config, port and process."""

    name: str
    config: Path
    target: str
    workdir: Path
    child: Child | None = None

    def spawn(self) -> None:
        argv = [*_prospect_sync(), "serve", "--config", str(self.config), "--listen", self.target]
        self.child = _spawn(self.name, argv, self.workdir)

    def wait_serving(self) -> None:
        assert self.child is not None
        wait_serving(self.child, self.target)

    def alive(self) -> bool:
        return self.child is not None and self.child.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash: no drain, no leave, no last write."""
        if self.child is not None and self.alive():
            self.child.process.kill()
            self.child.process.wait(timeout=10)

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()


@dataclass
class Cluster:
    fake: FakePardot
    redis: RedisServer
    replicas: list[Replica] = field(default_factory=list)

    @property
    def targets(self) -> list[str]:
        return [replica.target for replica in self.replicas]

    def start_replicas(self, replicas: list[Replica]) -> None:
        """All spawned first, then each waited for: they start side by side."""
        for replica in replicas:
            replica.spawn()
        for replica in replicas:
            replica.wait_serving()

    def fresh(self) -> None:
        """A clean cluster for the next test: the fake reset (fresh accounts, switches,
        no tokens or calls), Redis running and emptied, every replica running."""
        self.fake.state.reset()
        if self.redis.process is None or self.redis.process.poll() is not None:
            self.redis.start()
        with contextlib.closing(redis.Redis.from_url(self.redis.url)) as client:
            client.flushdb()
        self.start_replicas([r for r in self.replicas if not r.alive()])

    def stop(self) -> None:
        for replica in self.replicas:
            with contextlib.suppress(Exception):
                replica.stop()
        self.redis.stop()


@contextlib.contextmanager
def running_cluster(folder: Path, count: int = REPLICAS) -> Iterator[Cluster]:
    """The cluster, running until the ``with`` ends, however it ends; its configs, logs
    and Redis files in ``folder``."""
    with FakePardot() as fake:
        cluster = Cluster(
            fake, RedisServer(redis_server_binary(), folder / "redis", extra_args=PERSISTENT)
        )
        try:
            cluster.redis.start()
            for n in range(count):
                config = folder / f"replica-{n}.toml"
                config.write_text(replica_config(fake, cluster.redis.url, folder / f"state-{n}"))
                config.chmod(0o600)  # it holds the fake's demo credentials
                target = f"{LOOPBACK}:{free_port()}"
                cluster.replicas.append(Replica(f"replica-{n}", config, target, folder))
            cluster.start_replicas(cluster.replicas)
            yield cluster
        finally:
            cluster.stop()
