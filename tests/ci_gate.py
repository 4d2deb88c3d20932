"""Under CI a skipped test is a failure: nothing may silently not run.

A pytest hook, registered by ``tests/conftest.py``; kept free of the
project's imports so that tests/test_ci_gate.py can run it in small pytest
runs of its own, serial and under pytest-xdist.
"""

from __future__ import annotations

import os

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Fail the run when ``CI`` is set and any test was skipped.

    Under pytest-xdist this runs in the controller, whose reporter holds
    every worker's results.
    """
    skipped = terminalreporter.stats.get("skipped", [])
    if os.environ.get("CI") and skipped:
        terminalreporter.write_line(
            f"CI: {len(skipped)} test(s) skipped — failing the run", red=True
        )
        session = getattr(terminalreporter, "_session", None)
        if session is not None:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
