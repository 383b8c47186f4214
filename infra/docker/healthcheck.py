"""Container healthchecks (docker-compose.yml): exit 0 when this container's service can do its job.

    python infra/docker/healthcheck.py tcp PORT         a server accepts connections on 127.0.0.1:PORT
    python infra/docker/healthcheck.py http URL         URL answers 200 (auth's /healthz checks its Redis)
    python infra/docker/healthcheck.py consumer ROLE    the role's (relay, delivery) consumer group exists and
                                                        this container's process is connected to Redis

Workers have no port, so "healthy" for them means started (the group is made at start) and connected.
"""

import os
import socket
import sys
import urllib.request

TIMEOUT_S = 3.0


def check_tcp(port: str) -> None:
    socket.create_connection(("127.0.0.1", int(port)), timeout=TIMEOUT_S).close()


def check_http(url: str) -> None:
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:  # noqa: S310 (a fixed local URL)
        if response.status != 200:
            raise RuntimeError(f"{url}: HTTP {response.status}")


def check_consumer(role: str) -> None:
    import redis

    from shared import streams

    stream, group = {
        "relay": (streams.OUTBOUND, streams.RELAY_GROUP),
        "delivery": (streams.LOCAL_DELIVERY, streams.DELIVERY_GROUP),
    }[role]
    client = redis.Redis.from_url(os.environ["YUBIN_REDIS_URL"], socket_timeout=TIMEOUT_S)
    sentinels = os.environ.get("YUBIN_REDIS_SENTINELS", "")
    if sentinels:  # the `ha` profile (docs/ha.md): the worker talks to whichever node is the primary now
        from redis.sentinel import Sentinel

        nodes = [(item.rpartition(":")[0], int(item.rpartition(":")[2])) for item in sentinels.split(",")]
        manager = Sentinel(nodes, socket_timeout=TIMEOUT_S)
        host, port = manager.discover_master(os.environ.get("YUBIN_REDIS_SENTINEL_MASTER", "yubin"))
        client = redis.Redis(host=host, port=port, socket_timeout=TIMEOUT_S)
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:  # the stream does not exist yet
        groups = []
    if not any(info["name"].decode() == group for info in groups):
        raise RuntimeError(f"no group {group} on {stream}: the {role} service has not started")
    # The group outlives the process; the process is alive if it holds a connection from this container.
    # (Redis lists a consumer only once it has been given an entry, so an idle one cannot be seen there.)
    me = client.client_info()
    my_host = me["addr"].rsplit(":", 1)[0]
    others = [
        c for c in client.client_list() if c["id"] != me["id"] and c["addr"].rsplit(":", 1)[0] == my_host
    ]
    if not others:
        raise RuntimeError(f"no connection to Redis from this container ({my_host})")


CHECKS = {"tcp": check_tcp, "http": check_http, "consumer": check_consumer}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in CHECKS:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        CHECKS[argv[0]](argv[1])
    except Exception as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
