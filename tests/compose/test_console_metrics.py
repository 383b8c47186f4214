"""The compose console's map figures (no Docker needed): it scrapes every Yubin service of both sites where
that service serves its metrics, by service name (resolved to every replica), over the metrics network."""

from tests.compose.compose_file import environment, load, yubin_services
from yubin.console.settings import ConsoleSettings

COMPOSE = load()
SERVICES = COMPOSE["services"]


def test_the_console_scrapes_every_yubin_service_over_the_metrics_network() -> None:
    env = environment(SERVICES["console"])
    targets = ConsoleSettings.model_validate({"metrics": env["YUBIN_CONSOLE_METRICS"]}).metrics
    expected = {}
    for name in yubin_services(COMPOSE):
        role, _, site = name.rpartition("-")
        port = environment(SERVICES[name])["YUBIN_METRICS_PORT"]
        expected[f"{site}.test/{role}"] = [f"http://{name}:{port}/metrics"]
    assert targets == expected
    assert "metrics" in SERVICES["console"]["networks"]
