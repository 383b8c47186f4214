"""How hard the fuzz tests try: YUBIN_FUZZ_EXAMPLES examples per test (docs/development.md, *Fuzzing*).

The default keeps every fuzz test together well under a minute of `make test` on a loaded two-core
machine; a long run (`YUBIN_FUZZ_EXAMPLES=100000 make test PYTEST_ARGS=tests/unit/fuzz`) searches deeper.
"""

import os

from hypothesis import HealthCheck, settings

EXAMPLES_ENV = "YUBIN_FUZZ_EXAMPLES"
DEFAULT_EXAMPLES = 600


def fuzz_settings(share: float = 1.0) -> settings:
    """Hypothesis settings for one fuzz test that gets `share` of the per-test budget."""
    examples = int(os.environ.get(EXAMPLES_ENV, DEFAULT_EXAMPLES))
    return settings(
        max_examples=max(1, int(examples * share)),
        deadline=None,  # a loaded machine makes single examples slow; that is not a failure
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=False,
    )
