"""Figures of a run, the median over runs, and the table printed at the end."""

import statistics
from typing import Any

from bench.load import RunResult


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def figures(run: RunResult) -> dict[str, Any]:
    return {
        "submission_rate": run.count / run.submit_seconds,
        "end_to_end_rate": run.count / run.end_to_end_seconds if run.end_to_end_seconds > 0 else float("nan"),
        "latency_p50_ms": percentile(run.latencies_ms, 50),
        "latency_p95_ms": percentile(run.latencies_ms, 95),
        "latency_p99_ms": percentile(run.latencies_ms, 99),
        "pop3_rate": run.pop3_messages / run.pop3_seconds if run.pop3_seconds > 0 else float("nan"),
        "pop3_mb_per_s": run.pop3_bytes / run.pop3_seconds / 1e6 if run.pop3_seconds > 0 else float("nan"),
        "missing": run.missing,
        "duplicates": run.duplicates,
        "cpu_ms_per_message": run.cpu_ms,
        "pop3_cpu_ms_per_message": run.pop3_cpu_ms,
    }


def median_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    medians: dict[str, Any] = {}
    for key, first in runs[0].items():
        if isinstance(first, dict):  # {process: ms}: the median per process over the runs that saw it
            names = {name for run in runs for name in run[key]}
            medians[key] = {
                name: statistics.median(run[key][name] for run in runs if name in run[key])
                for name in sorted(names)
            }
        else:
            medians[key] = statistics.median(run[key] for run in runs)
    return medians


def cpu_table(title: str, ms: dict[str, float]) -> str:
    """CPU ms per message of each lab process (the median per process; `total` is the median total)."""
    if not ms:
        return ""
    lines = [f"{title:<28}{'ms/msg':>10}", "-" * 38]
    lines += [f"{name:<28}{value:>10.3f}" for name, value in ms.items() if name != "total"]
    if "total" in ms:
        lines.append(f"{'total':<28}{ms['total']:>10.3f}")
    return "\n".join(lines) + "\n"


ROWS = [
    ("submission_rate", "submission rate", "msg/s"),
    ("end_to_end_rate", "end-to-end rate", "msg/s"),
    ("latency_p50_ms", "latency p50", "ms"),
    ("latency_p95_ms", "latency p95", "ms"),
    ("latency_p99_ms", "latency p99", "ms"),
    ("pop3_rate", "POP3 RETR+DELE", "msg/s"),
    ("pop3_mb_per_s", "POP3 throughput", "MB/s"),
    ("missing", "missing", ""),
    ("duplicates", "duplicates", ""),
]


def table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """results: {mode: {target: median figures}} → a text table, with the ratio yubin/reference if both."""
    lines = []
    for mode, by_target in results.items():
        names = list(by_target)
        header = f"{mode:<28}" + "".join(f"{name:>14}" for name in names)
        if "yubin" in by_target and "reference" in by_target:
            header += f"{'ratio':>10}"
        lines += [header, "-" * len(header)]
        for key, label, unit in ROWS:
            row = f"{label + (f' ({unit})' if unit else ''):<28}"
            row += "".join(f"{by_target[name][key]:>14.1f}" for name in names)
            if "yubin" in by_target and "reference" in by_target and by_target["reference"][key]:
                row += f"{by_target['yubin'][key] / by_target['reference'][key]:>10.2f}"
            lines.append(row)
        lines.append("")
    return "\n".join(lines)
