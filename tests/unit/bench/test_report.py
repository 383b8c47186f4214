"""The benchmark's arithmetic: message size, percentiles, medians, the table (no timing is asserted)."""

from bench.load import BENCH_ID, RunResult, message
from bench.report import figures, median_figures, percentile, table


def test_message_has_its_id_and_about_the_asked_size() -> None:
    data = message("bench1@alpha.test", "bench1@beta.test", "r1-7", 4096)
    assert BENCH_ID.search(data).group(1) == b"r1-7"
    assert 4096 - 100 < len(data) <= 4096
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) in (50.0, 51.0)
    assert percentile(values, 99) == 99.0
    assert percentile([5.0], 99) == 5.0


def run(seconds: float) -> RunResult:
    return RunResult(
        count=100, size=4096, sessions=8, rate=None, submit_seconds=seconds / 2, end_to_end_seconds=seconds,
        latencies_ms=[10.0, 20.0, 30.0], pop3_seconds=0.1, pop3_messages=100, pop3_bytes=409600,
        missing=0, duplicates=0,
    )  # fmt: skip


def test_median_of_runs_and_ratio_column() -> None:
    runs = [figures(run(s)) for s in (1.0, 2.0, 4.0)]
    median = median_figures(runs)
    assert median["end_to_end_rate"] == 50.0
    assert median["pop3_rate"] == 1000.0
    text = table({"burst": {"yubin": median, "reference": {**median, "end_to_end_rate": 25.0}}})
    assert "ratio" in text
    line = next(line for line in text.splitlines() if line.startswith("end-to-end rate"))
    assert line.split()[-1] == "2.00"
