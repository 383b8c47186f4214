import json
import logging

import pytest
from pydantic import ValidationError

from shared.log import JsonFormatter, log_context
from shared.maildir import UnsafeAddress, mailbox_path
from shared.models import Envelope, new_queue_id


def test_envelope_round_trips_through_json() -> None:
    env = Envelope(sender="", recipients=["bob@beta.test"], body_id="abc", message_id="<m@x>")
    assert env.is_bounce
    assert Envelope.model_validate_json(env.model_dump_json()) == env


@pytest.mark.parametrize("field", ["sender", "helo", "message_id"])
def test_envelope_refuses_line_breaks(field: str) -> None:
    with pytest.raises(ValidationError):
        Envelope(recipients=["b@beta.test"], body_id="x", **{field: "a@b\r\nRCPT TO:<evil@x>"})
    with pytest.raises(ValidationError):
        Envelope(recipients=["b@beta.test\nDATA"], body_id="x")


def test_envelope_needs_a_recipient() -> None:
    with pytest.raises(ValidationError):
        Envelope(recipients=[], body_id="x")


def test_queue_ids_are_unique_and_time_sortable() -> None:
    ids = [new_queue_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(i.isalnum() and i.isupper() for i in ids if not i.isdigit())


def test_json_log_carries_context_and_extra() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "stored %s", ("it",), None)
    record.recipient = "bob@beta.test"
    with log_context(queue_id="Q1", message_id="<m@x>"):
        line = json.loads(JsonFormatter("delivery").format(record))
    assert line["msg"] == "stored it"
    assert line["queue_id"] == "Q1" and line["message_id"] == "<m@x>"
    assert line["recipient"] == "bob@beta.test"
    assert line["service"] == "delivery"
    # Outside the context the ids are gone again.
    assert "queue_id" not in json.loads(JsonFormatter("d").format(record))


def test_mailbox_path(tmp_path) -> None:
    assert mailbox_path(tmp_path, "bob@beta.test") == tmp_path / "beta.test" / "bob"
    for bad in ["../x@beta.test", "a/b@beta.test", ".bob@beta.test", "bob@../etc", "bob", "Bob@beta.test"]:
        with pytest.raises(UnsafeAddress):
            mailbox_path(tmp_path, bad)


def test_setup_logging_writes_json_lines_with_context_and_flushes_at_exit() -> None:
    import subprocess
    import sys

    script = (
        "import logging\n"
        "from shared.log import setup_logging, log_context\n"
        "setup_logging('delivery')\n"
        "with log_context(queue_id='Q9', message_id='<m@x>'):\n"
        "    for n in range(500):\n"
        "        logging.getLogger('t').info('line %d', n)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [line["msg"] for line in lines] == [f"line {n}" for n in range(500)]
    assert {(line["queue_id"], line["message_id"], line["service"]) for line in lines} == {
        ("Q9", "<m@x>", "delivery")
    }


def test_log_lines_from_many_threads_all_arrive_whole_and_in_order_per_thread() -> None:
    """The writer thread batches lines into single writes: none lost, torn or reordered within a thread."""
    import subprocess
    import sys

    script = (
        "import logging, threading\n"
        "from shared.log import setup_logging\n"
        "setup_logging('relay')\n"
        "def run(t):\n"
        "    for n in range(300):\n"
        "        logging.getLogger('t').info('%s %d', t, n, extra={'pad': 'x' * (n % 97)})\n"
        "threads = [threading.Thread(target=run, args=(t,)) for t in 'abcd']\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    lines = [json.loads(line)["msg"].split() for line in result.stderr.splitlines()]
    for thread in "abcd":
        assert [int(n) for t, n in lines if t == thread] == list(range(300))
    assert len(lines) == 1200
