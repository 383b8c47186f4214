"""Oversized request bodies against the real auth process: refused with a JSON 413 before any route runs."""

import json
import subprocess
from collections.abc import Iterator

import httpx

from services.auth.app import MAX_BODY_BYTES
from tests.fixtures.binaries import require_binary

TOO_LARGE = {"detail": f"request body larger than {MAX_BODY_BYTES} bytes"}


def chunks(total: int, size: int = 1024) -> Iterator[bytes]:
    """A body httpx sends chunked (no Content-Length): a JSON string padded to `total` bytes."""
    yield b'{"name": "'
    sent = 10
    while sent < total:
        piece = min(size, total - sent)
        yield b"x" * piece
        sent += piece
    yield b'"}'


def test_a_declared_oversized_body_is_refused_and_the_route_never_runs(auth_service):
    auth_service.add_domain("alpha.test")
    auth_service.add_user("bob@alpha.test", "bobs-password")
    admin = auth_service.admin
    # A DELETE does not read its body: only a limit in front of the routes keeps it from running.
    answer = admin.request("DELETE", "/v1/users/bob@alpha.test", content=b"x" * (MAX_BODY_BYTES + 1))
    assert answer.status_code == 413
    assert admin.get("/v1/users/bob@alpha.test").status_code == 200  # still there
    assert answer.json() == TOO_LARGE

    body = {"address": "carol@alpha.test", "password": "p" * 1000, "pad": "x" * MAX_BODY_BYTES}
    answer = admin.post("/v1/users", json=body)
    assert (answer.status_code, answer.json()) == (413, TOO_LARGE)
    assert "xxxx" not in answer.text


def test_a_chunked_body_over_the_bound_is_refused_and_one_within_it_accepted(auth_service):
    url = f"{auth_service.url}/v1/domains"
    headers = {"Authorization": f"Bearer {auth_service.admin_token}", "Content-Type": "application/json"}
    with httpx.Client(headers=headers) as client:
        answer = client.post(url, content=chunks(2 * MAX_BODY_BYTES))
        assert "content-length" not in answer.request.headers  # really sent chunked
        assert answer.request.headers["transfer-encoding"] == "chunked"
        assert (answer.status_code, answer.json()) == (413, TOO_LARGE)

        small = client.post(url, content=iter([b'{"name": ', b'"alpha.test"}']))
        assert small.request.headers["transfer-encoding"] == "chunked"
        assert small.status_code == 201, small.text
    assert [d["name"] for d in auth_service.admin.get("/v1/domains").json()] == ["alpha.test"]


def test_a_client_waiting_for_100_continue_is_refused_without_uploading(auth_service, tmp_path):
    """curl asks `Expect: 100-continue` and waits: the 413 comes instead and the body is never sent."""
    curl = require_binary("curl", "curl")
    big = tmp_path / "big.json"
    big.write_bytes(b"x" * (4 * 1024 * 1024))
    result = subprocess.run(
        [
            curl, "-sS", "-o", str(tmp_path / "answer"),
            "-w", '{"code": %{http_code}, "uploaded": %{size_upload}}',
            "-H", f"Authorization: Bearer {auth_service.service_token}",
            "-H", "Content-Type: application/json", "-H", "Expect: 100-continue",
            "--expect100-timeout", "60",
            "--data-binary", f"@{big}", f"{auth_service.url}/internal/v1/verify",
        ],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"code": 413, "uploaded": 0}
    assert json.loads((tmp_path / "answer").read_text()) == TOO_LARGE
    # The service keeps serving.
    assert httpx.get(f"{auth_service.url}/healthz").status_code == 200
