"""A skipped test fails a CI run, serial and under pytest-xdist (``-n 2``).

Each case runs a tiny pytest project of its own in a subprocess with the
gate of ``tests/ci_gate.py`` as its conftest hook.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIPS = """
import pytest

def test_runs():
    assert True

def test_skips():
    pytest.skip("not here")
"""
PASSES = """
def test_runs():
    assert True

def test_runs_too():
    assert True
"""


def run_pytest(
    folder: Path, tests: str, *, ci: bool, workers: int
) -> subprocess.CompletedProcess[str]:
    """Run pytest on one test file in ``folder`` with the CI gate installed."""
    (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (folder / "conftest.py").write_text(
        "from tests.ci_gate import pytest_terminal_summary  # noqa: F401\n", encoding="utf-8"
    )
    (folder / "test_tiny.py").write_text(tests, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_XDIST_WORKER")}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only xdist: seconds less per process
    if ci:
        env["CI"] = "1"
    parallel = ["-p", "xdist", "-n", str(workers)] if workers else []
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", *parallel, str(folder)],
        cwd=folder, env=env, capture_output=True, text=True, timeout=180, check=False,
    )


@pytest.mark.parametrize("workers", [0, 2], ids=["serial", "xdist"])
def test_a_skip_fails_a_ci_run(tmp_path: Path, workers: int) -> None:
    result = run_pytest(tmp_path, SKIPS, ci=True, workers=workers)
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    assert "1 test(s) skipped — failing the run" in result.stdout
    assert "1 passed, 1 skipped" in result.stdout


def test_a_ci_run_without_skips_passes_under_xdist(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, PASSES, ci=True, workers=2)
    assert result.returncode == pytest.ExitCode.OK, result.stdout + result.stderr
    assert "failing the run" not in result.stdout


def test_a_skip_outside_ci_only_reports(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, SKIPS, ci=False, workers=2)
    assert result.returncode == pytest.ExitCode.OK, result.stdout + result.stderr
    assert "1 passed, 1 skipped" in result.stdout
