"""The fixture that runs services as processes leaves none behind, even when one never comes up."""

import pytest

from tests.fixtures.ports import free_port
from tests.fixtures.processes import ServiceProcess


def test_a_service_that_does_not_come_up_is_not_left_running(tmp_path) -> None:
    service = ServiceProcess("tests.fixtures.never_listens", {}, tmp_path / "stuck.log")
    with pytest.raises(RuntimeError, match="did not start"):
        service.start(wait_port=("127.0.0.1", free_port()), timeout=1.0)
    assert service.proc is not None
    try:
        assert not service.alive()
    finally:
        service.kill()  # on a fixture that fails this test, not left behind either
