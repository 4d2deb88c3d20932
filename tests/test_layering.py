"""The layering contract (``[tool.importlinter]`` in pyproject.toml) holds and can fail.

``lint-imports`` runs in ``scripts/dev.sh test``. Here it runs on the real
tree (every contract kept) and on a copy of the packages with deliberate
violations planted in the core (the contract named, non-zero exit), so a
contract that could never fail would be caught.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gis", "api", "boundaries")
CORE = "gis is the core: no api, web framework, CLI or sample city"
PERSISTENCE = "SQLAlchemy, GeoAlchemy2 and Alembic only in gis.repository"
MAPS = "folium only in gis.maps"


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """Run ``lint-imports`` on the packages under ``tree`` with its pyproject.toml."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command;"
         " sys.exit(lint_imports_command())",
         "--config", str(tree / "pyproject.toml"), "--no-cache", "--no-logo"],
        cwd=tree, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Return a copy of the packages' Python sources and pyproject.toml."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=_not_python)
    shutil.copyfile(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_real_tree_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in (CORE, PERSISTENCE, MAPS):
        assert f"{name} KEPT" in result.stdout


def test_a_copy_keeps_every_contract(tree: Path) -> None:
    # The copy itself is clean: the failures below come from the planted modules only.
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "source", "contract"),
    [
        ("gis/units/_upward.py", "from api.errors import problem  # noqa\n", CORE),
        ("gis/locate/_web.py", "import fastapi\n", CORE),
        ("gis/_cli.py", "from rich.console import Console\n", CORE),
        ("gis/places/_sample.py", "import boundaries\n", CORE),
        ("gis/units/_sql.py", "from sqlalchemy import text\n", PERSISTENCE),
        ("api/routers/_sql.py", "import geoalchemy2\n", PERSISTENCE),
        ("gis/alignment/_map.py", "import folium\n", MAPS),
    ],
)
def test_a_planted_violation_breaks_its_contract(
    tree: Path, module: str, source: str, contract: str
) -> None:
    (tree / module).write_text(source, encoding="utf-8")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert f"{contract} BROKEN" in result.stdout
    dotted = module.removesuffix(".py").replace("/", ".")
    assert dotted in result.stdout  # the report names the offending module


def _not_python(folder: str, names: list[str]) -> list[str]:
    return [
        n for n in names
        if n == "__pycache__" or not (n.endswith(".py") or (Path(folder) / n).is_dir())
    ]
