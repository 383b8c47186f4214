"""Admission and stress mode of one listener (`SessionRegistry`), and the per-address connection rate."""

from services.submission.connections import ConnectionRate, Refusal, SessionRegistry


class Session:
    """The little a registry needs of a session: it records what the registry did to it."""

    def __init__(self) -> None:
        self.in_transaction = False
        self.timeout_changes = 0
        self.ended: str | None = None

    def end_session(self, reply: str) -> None:
        self.ended = reply

    def idle_timeout_changed(self) -> None:
        self.timeout_changes += 1


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_rate_counts_attempts_per_address_per_window() -> None:
    clock = Clock()
    rate = ConnectionRate(60.0, clock)
    assert [rate.attempt("192.0.2.1") for _ in range(3)] == [1, 2, 3]
    assert rate.attempt("192.0.2.2") == 1
    clock.now = 59.0
    assert rate.attempt("192.0.2.1") == 4
    clock.now = 60.0  # 192.0.2.1's window (from 0 s) is over
    assert rate.attempt("192.0.2.1") == 1
    assert rate.attempt("192.0.2.2") == 1


def test_rate_table_is_bounded() -> None:
    rate = ConnectionRate(60.0, Clock())
    rate.max_addresses = 3
    for n in range(5):
        rate.attempt(f"192.0.2.{n}")
    assert rate.attempt("192.0.2.0") == 1  # the oldest were forgotten
    assert rate.attempt("192.0.2.4") == 2


def test_per_address_limit_and_release() -> None:
    registry = SessionRegistry(10, max_per_ip=2)
    a, b, c = Session(), Session(), Session()
    assert registry.admit(a, "192.0.2.1") is None
    assert registry.admit(b, "192.0.2.1") is None
    assert registry.admit(c, "192.0.2.1") is Refusal.TOO_MANY_FROM_ADDRESS
    assert registry.admit(c, "192.0.2.2") is None
    registry.release(c)  # a refused or finished session released twice changes nothing
    registry.release(c)
    registry.release(a)
    assert registry.admit(Session(), "192.0.2.1") is None
    assert len(registry) == 2


def test_rate_limit_counts_refused_attempts() -> None:
    registry = SessionRegistry(10, max_rate_per_ip=2)
    first = Session()
    assert registry.admit(first, "192.0.2.1") is None
    registry.release(first)
    assert registry.admit(Session(), "192.0.2.1") is None
    assert registry.admit(Session(), "192.0.2.1") is Refusal.RATE_FROM_ADDRESS
    assert registry.admit(Session(), "192.0.2.2") is None


def test_stress_shortens_the_idle_timeout_of_every_session() -> None:
    registry = SessionRegistry(4, idle_timeout_s=300.0, stress_at=3, stress_idle_timeout_s=10.0)
    sessions = [Session() for _ in range(3)]
    registry.admit(sessions[0], "192.0.2.1")
    registry.admit(sessions[1], "192.0.2.2")
    assert registry.idle_timeout_s == 300.0 and not registry.stressed
    registry.admit(sessions[2], "192.0.2.3")
    assert registry.stressed and registry.idle_timeout_s == 10.0
    assert [s.timeout_changes for s in sessions] == [1, 1, 1]
    assert registry.admit(Session(), "192.0.2.4") is None
    assert registry.admit(Session(), "192.0.2.5") is Refusal.FULL
    registry.release(sessions[0])
    registry.release(sessions[1])
    assert not registry.stressed and registry.idle_timeout_s == 300.0


def test_stress_never_lengthens_the_idle_timeout() -> None:
    registry = SessionRegistry(2, idle_timeout_s=2.0, stress_at=1, stress_idle_timeout_s=10.0)
    registry.admit(Session(), "192.0.2.1")
    assert registry.idle_timeout_s == 2.0
