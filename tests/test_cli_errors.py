"""Every CLI command with bad arguments: a message naming the field, a non-zero exit, no traceback.

The commands are enumerated from the Typer application itself, so a new
command is swept too; each must meet at least one bad argument here (a
command the sweep cannot reach fails :func:`test_every_command_is_swept`).
"""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pytest
import shapely
import typer
from shapely import box
from typer.testing import CliRunner

from api.cli import app
from gis.layers import POLICE
from gis.settings import get_settings
from gis.units import import_file

runner = CliRunner()

#: Values for the required parameters, by parameter name (files are made per test).
VALID = {
    "layer": "governance",
    "level": "county",
    "format": "geojson",
    "username": "wang",
    "role": "viewer",
    "name": "hotline",
    "unit": "350502",
    "kind": "buildings",
    "lon": "118.58",
    "lat": "24.91",
    "levels": "area",
    "staff_id": "1",
    "key_id": "tg_nope",
    "op": "merge",
    "changeset_id": "999999",
    "route_id": "999999",
    "category": "0101",
    "incident_id": "1",
    "action": "accept",
}

#: param name -> (bad value, what the message must name).
BAD: dict[str, list[tuple[str, str]]] = {
    "at": [("yesterday", "--at")],
    "valid_from": [("31.12.2026", "--valid-from")],
    "since": [("last week", "--since")],
    "until": [("soon", "--until")],
    "diff_from": [("2026-13-01", "--diff-from")],
    "apply": [("tomorrow", "--apply")],
    "level": [("no_such_level", "level")],
    "layer": [("no_such_layer", "layer")],
    "layer_a": [("governance", "LAYER:LEVEL"), ("governance:no_such_level", "level")],
    "layer_b": [("police:no_such_level", "level")],
    "crs": [("EPSG:999999", "crs")],
    "parent_crs": [("not-a-crs", "crs")],
    "output": [("{missing}/out.geojson", "--output")],
    "map": [("{missing}/map.html", "--map")],
    "chunk_rows": [("0", "--chunk-rows")],
    "limit": [("0", "--limit")],
    "format": [("xml", "--format")],
    "role": [("no_such_role", "role")],
    "staff_id": [("abc", "STAFF_ID")],
    "lat": [("95", "latitude")],
    "lon": [("east", "LON")],
    "port": [("http", "--port")],
    "kind": [("cats", "KIND")],
    "name": [("Bad Name", "name")],
    "code_length": [("zone=x", "--code-length")],
    "accuracy": [("-5", "accuracy")],
    "unit": [("nowhere:0", "nowhere")],
    "key_id": [("tg_nope", "tg_nope")],
    "username": [("nobody", "nobody")],
    "encoding": [("klingon", "encoding")],
    "code_field": [("no_such_column", "no_such_column")],
    "parent": [("{missing}/parents.geojson", "parents.geojson")],
    "cascade": [("sideways", "--cascade")],
    "x": [("no_such_column", "no_such_column")],
    "sliver_area": [("-1", "sliver")],
    "sliver_width": [("-0.5", "sliver")],
    "rate": [("0", "rate")],
    "workers": [("0", "--workers")],
    "route_id": [("abc", "ROUTE_ID"), ("999999", "no route 999999")],
    "category": [("9999", "9999")],
    "incident_id": [("abc", "INCIDENT_ID")],
    "ids": [("abc", "IDS")],
    "score": [("9", "--score")],
    "merged_into": [("0", "--merged-into")],
    "event_time": [("tomorrow-ish", "--event-time")],
}

#: Per command: other valid values, and bad ones replacing the generic cases.
VALID_FOR: dict[tuple[str, ...], dict[str, str]] = {
    ("staff", "add"): {"role": "grid_worker"},
    ("users", "add"): {"role": "admin"},
}
BAD_FOR: dict[tuple[str, ...], dict[str, list[tuple[str, str]]]] = {
    ("keys", "create"): {"name": [(" ", "name")], "unit": [("nowhere:0", "nowhere")]},
    ("staff", "add"): {"name": [(" ", "name")]},
    ("staff", "list"): {"unit": []},  # a filter: an unknown code lists nobody
    ("users", "add"): {"username": [("wang wang", "user")]},
    # merge's own check comes first: it names the units it needs.
    ("edit",): {"unit": [("nowhere:0", "unit")], "name": []},  # --name: carve's free text
    ("changesets", "list"): {"unit": []},  # a filter: an unknown code lists nothing
    ("incidents", "intake"): {"datum": [("mars", "datum")], "x": [("east", "--x")]},
    ("incidents", "list"): {"unit": []},  # a filter: an unknown code lists nothing
    # --unit only matters for dispatch/escalate; the incident comes first.
    ("incidents", "transition"): {"action": [("teleport", "teleport")], "unit": []},
    # --layer only qualifies --unit; the street file comes with every call.
    **{("patrol", verb): {"layer": []} for verb in ("plan", "export", "check", "score")},
    # Filters: an unknown unit or layer lists no route.
    ("patrol", "routes", "list"): {"unit": [], "layer": []},
    ("incidents", "evaluate"): {"by": [("police:no_such_level", "by")]},
}

#: Optional parameters given with every call of a command (with their valid value).
ALWAYS_FOR: dict[tuple[str, ...], tuple[str, ...]] = {
    ("patrol", verb): ("network",) for verb in ("plan", "export", "check", "score")
}


#: Commands that read only files, never the database (patrol: given a street file).
FILE_ONLY = {("check",), *(("patrol", verb) for verb in ("plan", "export", "check", "score"))}

#: Settings no command can use: the message names the setting.
BAD_SETTINGS = [
    ("TONGGE_DATABASE_URL", "mysql://root@localhost/tongge", "database url"),
    ("TONGGE_CLI_NICENESS", "very", "TONGGE_CLI_NICENESS"),
    ("TONGGE_BASEMAP_URL", "ftp://tiles.example.cn/{z}/{x}/{y}.png", "TONGGE_BASEMAP_URL"),
]


@dataclass(frozen=True)
class Case:
    path: tuple[str, ...]
    param: str
    args: tuple[str, ...]
    names: str
    env: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return f"{' '.join(self.path)} --{self.param} {self.args}"


def commands() -> dict[tuple[str, ...], Any]:
    """Every leaf command of the application, by its path (``("places", "import")``)."""
    found: dict[tuple[str, ...], Any] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        if hasattr(command, "commands"):  # a group
            for name, sub in command.commands.items():
                walk(sub, (*path, name))
        else:
            found[path] = command

    walk(typer.main.get_command(app), ())
    return found


def is_argument(param: Any) -> bool:
    return bool(param.param_type_name == "argument")


def path_parameters(command: Any) -> set[str]:
    """Names of the command's parameters that are files (annotated ``Path``)."""
    hints = typing.get_type_hints(command.callback, include_extras=True)
    return {
        name
        for name, hint in hints.items()
        if typing.get_origin(hint) is typing.Annotated
        if Path in (typing.get_args(typing.get_args(hint)[0]) or (typing.get_args(hint)[0],))
    }


def invocation(
    command: Any, files: dict[str, Path], bad: dict[str, str], *, path: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """Arguments with the valid value of every required parameter and ``bad`` ones."""
    args: list[str] = []
    valid = {**VALID, **VALID_FOR.get(path, {})}
    for param in command.params:
        name = param.name or ""
        if name in bad:
            value = bad[name]
        elif param.required or name in ALWAYS_FOR.get(path, ()):
            value = str(files[name]) if name in files else valid[name]
        else:
            continue
        if is_argument(param):
            args.append(value)
        else:
            args += [param.opts[-1] if param.opts[-1].startswith("--") else param.opts[0], value]
    return tuple(args)


def sweep(files: dict[str, Path], missing: Path) -> list[Case]:
    cases = []
    for path, command in commands().items():
        files_in = path_parameters(command)
        for param in command.params:
            name = param.name or ""
            for value, names in {**BAD, **BAD_FOR.get(path, {})}.get(name, []):
                value = value.format(missing=missing)
                args = invocation(command, files, {name: value}, path=path)
                cases.append(Case(path, name, (*path, *args), names))
            if is_argument(param) and name in files_in:
                # A file that is not there.
                gone = str(missing / f"no_{name}.geojson")
                args = invocation(command, files, {name: gone}, path=path)
                cases.append(Case(path, name, (*path, *args), f"no_{name}.geojson"))
        if path not in FILE_ONLY:
            for variable, value, names in BAD_SETTINGS:
                args = invocation(command, files, {}, path=path)
                cases.append(Case(path, variable, (*path, *args), names, ((variable, value),)))
    return cases


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Exit code and everything printed (stdout and stderr)."""
    code, stdout, stderr = run_apart(*args, env=env)
    return code, stdout + stderr


def run_apart(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    get_settings.cache_clear()
    result = runner.invoke(app, list(args), env={"COLUMNS": "250", "TERM": "dumb", **(env or {})})
    get_settings.cache_clear()
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{args}: {result.exception!r}\n{result.stdout}{result.stderr}"
    )
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    """Yield the files the commands read, with an initialised data directory (one county)."""
    monkeypatch.setenv("TONGGE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TONGGE_DATABASE_URL", raising=False)
    monkeypatch.setenv("TONGGE_LOAD_SAMPLE_CITY", "false")
    monkeypatch.setenv("TONGGE_CLI_NICENESS", "0")
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    county = tmp_path / "county.geojson"
    gpd.GeoDataFrame(
        {"code": ["350502"], "name": ["鲤城区"]},
        geometry=[box(118.55, 24.88, 118.62, 24.93)],
        crs=4490,
    ).to_file(county)
    points = tmp_path / "points.csv"
    pd.DataFrame({"x": [118.58, 100.0], "y": [24.91, 30.0]}).to_csv(points, index=False)
    code, output = run("init")
    assert code == 0, output
    from api.bootstrap import open_database

    db = open_database()
    import_file(db, path=county, layer="governance", level="county", valid_from="2026-01-01")
    with db.transaction() as repo:
        repo.ensure_layer(POLICE)
    db.dispose()
    assert run("users", "add", "wang", "--role", "admin")[0] == 0
    streets = tmp_path / "streets.geojson"
    gpd.GeoDataFrame(
        {"name": ["中山路", "新华路"]},
        geometry=[
            shapely.LineString([(118.56, 24.90), (118.61, 24.90)]),
            shapely.LineString([(118.58, 24.89), (118.58, 24.92)]),
        ],
        crs=4490,
    ).to_file(streets)
    track = tmp_path / "track.gpx"
    track.write_text(
        '<?xml version="1.0"?><gpx version="1.1" creator="t" '
        'xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>'
        '<trkpt lat="24.90" lon="118.57"><time>2026-12-01T08:00:00Z</time></trkpt>'
        '<trkpt lat="24.90" lon="118.59"><time>2026-12-01T08:10:00Z</time></trkpt>'
        "</trkseg></trk></gpx>",
        encoding="utf-8",
    )
    yield {
        "file": county,
        "area": county,
        "network": streets,
        "route": streets,
        "track": track,
        "source": points,
        "output": tmp_path / "out.csv",
        "missing": tmp_path / "no_such_folder",
    }
    get_settings.cache_clear()


def test_every_command_is_swept(workspace: dict[str, Path]) -> None:
    cases = sweep(workspace, workspace["missing"])
    swept = {case.path for case in cases}
    assert swept == set(commands()), f"commands without a case: {set(commands()) - swept}"
    assert len(cases) > 60
    failures = []
    for case in cases:
        code, output = run(*case.args, env=dict(case.env))
        if code == 0 or "Traceback" in output or case.names.lower() not in output.lower():
            failures.append(f"{case}: exit {code}\n{output}")
    assert not failures, "\n\n".join(failures)
    assert not workspace["missing"].exists()  # nothing created a missing output folder


def test_commands_refuse_a_database_that_was_not_initialised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run from another folder with a data directory that holds no database:
    # every command that needs one says so, creates nothing and exits 2.
    data = tmp_path / "data"
    monkeypatch.setenv("TONGGE_DATA_DIR", str(data))
    monkeypatch.delenv("TONGGE_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    points = tmp_path / "points.csv"
    pd.DataFrame({"x": [118.58], "y": [24.91]}).to_csv(points, index=False)
    files = {"file": points, "source": points, "output": tmp_path / "out.csv"}
    try:
        for path, command in commands().items():
            if path in {*FILE_ONLY, ("init",), ("serve",)}:
                continue
            code, output = run(*path, *invocation(command, files, {}, path=path))
            assert code == 2, f"{path}: {output}"
            assert "tongge init" in output and str(data / "tongge.sqlite") in output, output
            assert "Traceback" not in output
        assert not data.exists()
        assert list(tmp_path.iterdir()) == [points]  # no database next to the user's files
    finally:
        get_settings.cache_clear()


def test_geocode_refuses_to_overwrite_its_input(workspace: dict[str, Path]) -> None:
    source = workspace["source"]
    before = source.read_bytes()
    code, output = run("geocode", str(source), "-o", str(source), "--x", "x", "--y", "y")
    assert code == 2 and "input file" in output and "--output" in output
    assert source.read_bytes() == before
    relative = run("geocode", str(source), "-o", source.name, "--x", "x", "--y", "y")
    assert relative[0] == 2 and "input file" in relative[1]


def test_unknown_level_is_an_error_not_an_empty_answer(workspace: dict[str, Path]) -> None:
    code, output = run("workload", "--level", "grdi", "--format", "json")
    assert code == 2 and "level 'grdi'" in output
    code, output = run("check", str(workspace["file"]), "--level", "grdi")
    assert code == 2 and "level 'grdi'" in output
    code, output = run("check", str(workspace["file"]), "--level", "county")
    assert code == 0, output


def test_locate_before_the_first_version_says_so(workspace: dict[str, Path]) -> None:
    code, output, _ = run_apart(
        "locate", "118.58", "24.91", "--at", "2020-01-01", "--format", "json"
    )
    assert code == 0, output
    answer = json.loads(output)
    assert answer["status"] == "before_first_version"
    assert answer["first_version"] == "2026-01-01T00:00:00+08:00"
    assert "before the first boundary version" in answer["message"]
    code, output, _ = run_apart(
        "locate", "118.58", "24.91", "--at", "2026-06-01", "--format", "json"
    )
    assert json.loads(output)["status"] == "ok"


def test_geocode_before_the_first_version_says_so_per_row(
    workspace: dict[str, Path], tmp_path: Path
) -> None:
    target = tmp_path / "early.csv"
    code, output = run(
        "geocode",
        str(workspace["source"]),
        "-o",
        str(target),
        "--x",
        "x",
        "--y",
        "y",
        "--at",
        "2020-01-01",
    )
    assert code == 0, output
    assert set(pd.read_csv(target)["status"]) == {"before_first_version"}
    code, output = run(
        "geocode", str(workspace["source"]), "-o", str(target), "--x", "x", "--y", "y"
    )
    assert code == 0, output
    assert list(pd.read_csv(target)["status"]) == ["ok", "outside"]
