"""Process-level tuning: the open-file limit a SIP server with RTP sockets needs."""

from __future__ import annotations

import resource
import subprocess
import sys

_CHILD = """
import resource
from callbridge.runtime import raise_open_file_limit
new = raise_open_file_limit()
print(new, *resource.getrlimit(resource.RLIMIT_NOFILE))
"""


def _run_with_soft_limit(soft: int) -> list[int]:
    def lower() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    out = subprocess.run(
        [sys.executable, "-c", _CHILD],
        preexec_fn=lower,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [int(part) for part in out.split()]


def test_the_soft_limit_is_raised_to_the_hard_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new, soft_after, hard_after = _run_with_soft_limit(256)
    assert hard_after == hard
    if hard == resource.RLIM_INFINITY:
        assert new == soft_after == 256  # nothing finite to raise to: left alone
    else:
        assert new == soft_after == hard


def test_a_soft_limit_already_at_the_hard_limit_is_kept() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new, soft_after, _ = _run_with_soft_limit(hard)
    assert new == soft_after == hard
