import pytest

from services.auth.throttle import client_network


@pytest.mark.parametrize(
    ("client_ip", "unit"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::9", "2001:db8:1:2::/64"),
        ("not-an-ip", "not-an-ip"),
    ],
)
def test_ipv6_clients_are_throttled_per_64(client_ip, unit):
    assert client_network(client_ip) == unit
