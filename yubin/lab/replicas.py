"""How many processes of each service a native lab site runs: `yubin lab up --replicas relay=3,delivery=2`.

Only the stream consumers scale here. Every relay or delivery process joins its site's consumer group
under its own consumer name (`shared.bus.default_consumer_name`: host and pid, so replicas on one host
never share one), and a replica killed with SIGKILL leaves its entries pending until another claims them
(`XAUTOCLAIM`). The listeners (submission, MX, POP3, auth) each have one address and port per site in the
native lab; several processes on one port would need SO_REUSEPORT in every server, and the per-client
limits would then count per process. They scale in the compose lab instead, behind its HAProxy front
(docs/compose.md), which is where `make test-compose` proves it.
"""

from collections.abc import Mapping

SCALABLE_ROLES = ("relay", "delivery")
LISTENING_ROLES = ("submission", "mx", "pop3", "auth")
MAX_REPLICAS = 16
"""More processes than a lab machine has cores many times over is a typo, not a lab."""


class ReplicasError(ValueError):
    pass


def parse_replicas(text: str) -> dict[str, int]:
    """`relay=3,delivery=2` -> {"relay": 3, "delivery": 2}; ReplicasError says what is wrong."""
    replicas: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        role, sep, count = part.partition("=")
        role = role.strip()
        if not sep or not count.strip().isdigit():
            raise ReplicasError(
                f"--replicas needs ROLE=COUNT[,ROLE=COUNT...], e.g. relay=3,delivery=2; got {part!r}"
            )
        if role in replicas:
            raise ReplicasError(f"--replicas names {role} twice")
        replicas[role] = int(count)
    check_replicas(replicas)
    return replicas


def check_replicas(replicas: Mapping[str, int]) -> None:
    for role, count in replicas.items():
        if role in LISTENING_ROLES:
            raise ReplicasError(
                f"--replicas {role}: {role} listens on one address and port per site in the native lab, so "
                f"it runs once; scale it in the compose lab, behind its HAProxy front (docs/compose.md). "
                f"Scalable here: {', '.join(SCALABLE_ROLES)}"
            )
        if role not in SCALABLE_ROLES:
            raise ReplicasError(
                f"--replicas: no service {role!r}; scalable in the native lab: {', '.join(SCALABLE_ROLES)}"
            )
        if not 1 <= count <= MAX_REPLICAS:
            raise ReplicasError(f"--replicas {role}={count}: between 1 and {MAX_REPLICAS}")


def replica_names(base: str, count: int) -> list[str]:
    """Process names: `alpha-relay` alone keeps its name (scripts and docs use it); several are numbered
    `alpha-relay-1`, `alpha-relay-2`, ... (the compose lab numbers its replicas the same way)."""
    if count == 1:
        return [base]
    return [f"{base}-{n}" for n in range(1, count + 1)]
