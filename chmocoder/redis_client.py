"""How the app reaches Redis: one place that builds the client, with the same timeouts and retries
whether Redis is a URL, found through Sentinels, or a Redis Cluster.

The chat store (chmocoder.store) and the rate limits (chmocoder.rate_limits) both connect through
here, so they always reach the same servers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry
from redis.sentinel import Sentinel

if TYPE_CHECKING:
    from .settings import Settings

# Each Redis call's connect and read timeout.
REDIS_TIMEOUT_S = 1.5


class RedisUnreachable(RuntimeError):
    """Redis cannot be reached at all when the client is built (a cluster reads its slot map at once)."""


@dataclass(frozen=True)
class RedisTarget:
    """Where the chats' Redis is: a URL, Sentinels that name the primary, or a Redis Cluster (the URL
    is then one of its nodes). The rate limits' storage reaches the same servers (chmocoder.rate_limits)."""

    url: str = ""
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str = "mymaster"
    password: str = field(default="", repr=False)  # of the servers found through the Sentinels
    sentinel_password: str = field(default="", repr=False)
    cluster: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, embedded_url: str = "") -> RedisTarget:
        """As configured; `embedded_url`: the embedded Redis's, used when no Redis is configured."""
        return cls(
            url=settings.redis_url or embedded_url,
            sentinels=settings.sentinel_list,
            service=settings.redis_sentinel_service,
            password=settings.redis_password.get_secret_value(),
            sentinel_password=settings.redis_sentinel_password.get_secret_value(),
            cluster=settings.redis_cluster,
        )


def _client_options() -> dict[str, Any]:
    # Retry a refused connection (a restart, a failover) briefly, but never a Redis that does not
    # answer: with 5 s timeouts retried three times a hung Redis held a request 20 s per call.
    # A hung or unreachable Redis is reported within about 2 s.
    return {
        "decode_responses": True,
        "socket_timeout": REDIS_TIMEOUT_S,
        "socket_connect_timeout": REDIS_TIMEOUT_S,
        "health_check_interval": 30,
        "retry": Retry(ExponentialBackoff(cap=0.4, base=0.05), retries=3, supported_errors=(redis.ConnectionError,)),
    }


def connect(target: RedisTarget) -> redis.Redis | RedisCluster:
    """The one way the app builds its Redis client, with the same timeouts and retries everywhere.
    Behind Sentinel every new connection asks the Sentinels for the primary, so after a failover the
    client follows the promoted replica by itself."""
    options = _client_options()
    if target.sentinels:
        sentinel_options: dict[str, Any] = {
            "socket_timeout": REDIS_TIMEOUT_S,
            "socket_connect_timeout": REDIS_TIMEOUT_S,
        }
        if target.sentinel_password:
            sentinel_options["password"] = target.sentinel_password
        sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_options, **options)
        return sentinel.master_for(target.service, password=target.password or None)
    if target.cluster:
        try:  # RedisCluster reads the slot map at once: a cluster that cannot be reached is a start-up error
            return RedisCluster.from_url(target.url, **options)
        except (redis.RedisError, RedisClusterException) as exc:
            raise RedisUnreachable(f"the Redis Cluster cannot be reached: {type(exc).__name__}: {exc}") from exc
    return redis.Redis.from_url(target.url, **options)
