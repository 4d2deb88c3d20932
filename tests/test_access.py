"""Accounts, roles, jurisdictions and the audit trail (domain and repository, both dialects)."""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path

import jwt
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from typer.testing import CliRunner

from api.cli import app as cli
from gis.access import ROLE_PERMISSIONS, SYSTEM, Jurisdiction, Permission, Role, audit_log
from gis.access import accounts as acc
from gis.access.credentials import TokenSigner, check_password_policy
from gis.access.principal import Principal, cli_principal
from gis.address import Match, parse_address
from gis.errors import (
    AuthenticationError,
    ConflictError,
    ForbiddenError,
    InputError,
    NotFoundError,
    ValidationFailedError,
)
from gis.layers import LayerSpec, LevelSpec
from gis.locate.answers import (
    AddressAnswer,
    Candidate,
    LayerAnswer,
    LevelAnswer,
    LocateAnswer,
    LocateInput,
)
from gis.repository import Database
from gis.settings import get_settings
from gis.staff import StaffMember, add_staff, end_staff
from gis.units import define_layer, export_layer, import_units
from tests.fixtures_access import GRID_A, GRID_B, MICRO_A, load_two_grids
from tests.fixtures_governance import COMMUNITIES, frame, load_governance

P = Permission


def test_role_table() -> None:
    # The table of docs and README, spelled out: a change here is a policy change.
    personal = {P.HOUSEHOLDS_READ, P.HOUSEHOLDS_EXPORT}
    assert ROLE_PERMISSIONS[Role.ADMIN] == set(Permission)
    assert not personal & ROLE_PERMISSIONS[Role.PLANNER]
    assert not personal & ROLE_PERMISSIONS[Role.DISPATCHER]
    assert not personal & ROLE_PERMISSIONS[Role.VIEWER]
    assert personal <= ROLE_PERMISSIONS[Role.GRID_WORKER] == ROLE_PERMISSIONS[Role.POLICE]
    # The three responsible people of a place (三员) work alike.
    assert ROLE_PERMISSIONS[Role.CADRE] == ROLE_PERMISSIONS[Role.POLICE]
    for role in Role:
        holds_admin = {P.ACCOUNTS_ADMIN, P.AUDIT_READ} & ROLE_PERMISSIONS[role]
        assert bool(holds_admin) == (role is Role.ADMIN)
    assert P.STAFF_WRITE in ROLE_PERMISSIONS[Role.PLANNER]
    patrol = {r for r in Role if P.PATROL in ROLE_PERMISSIONS[r]}
    assert patrol == {Role.ADMIN, Role.PLANNER, Role.GRID_WORKER, Role.POLICE, Role.CADRE}
    dispatching = {r for r in Role if P.INCIDENTS_DISPATCH in ROLE_PERMISSIONS[r]}
    assert dispatching == {Role.ADMIN, Role.DISPATCHER}
    handling = {r for r in Role if P.INCIDENTS_HANDLE in ROLE_PERMISSIONS[r]}
    assert handling == {Role.ADMIN, Role.DISPATCHER, Role.GRID_WORKER, Role.POLICE, Role.CADRE}
    assert ROLE_PERMISSIONS[Role.VIEWER] == {P.UNITS_READ, P.ALIGNMENT_READ, P.WORKLOAD_READ}
    assert Role.parse("社区民警") is Role.POLICE and Role.parse("Grid-Worker") is Role.GRID_WORKER
    with pytest.raises(InputError, match="unknown role"):
        Role.parse("superuser")
    with pytest.raises(ForbiddenError):
        Principal(kind="user", name="v", role=Role.VIEWER).require(P.GEOCODE)


@pytest.mark.parametrize(
    ("password", "problem"),
    [("short", "at least 12"), ("aaaaaaaaaaaaaaaa", "different"), ("xx-wang.grid-xx", "user name")],
)
def test_password_policy(password: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        check_password_policy(password, username="wang.grid")


KEY = "tongge-test-key-" + "0123456789abcdefghijklmnopqrstuv"


def test_tokens_expire_and_cannot_be_forged() -> None:
    signer = TokenSigner(KEY, ttl_seconds=60)
    claims = signer.read(signer.issue(subject="li", version=7))
    assert claims["sub"] == "li" and claims["ver"] == 7 and claims["exp"] - claims["iat"] == 60
    expired = jwt.encode(
        {"iss": "tongge", "sub": "li", "ver": 7, "iat": 1, "exp": int(time.time()) - 1},
        KEY,
        algorithm="HS256",
    )
    with pytest.raises(AuthenticationError, match="expired"):
        signer.read(expired)
    with pytest.raises(AuthenticationError, match="not valid"):
        TokenSigner(KEY[::-1], ttl_seconds=60).read(signer.issue(subject="li", version=7))
    unsigned = jwt.encode(
        {"iss": "tongge", "sub": "li", "ver": 7, "iat": 1, "exp": 2**40}, None, algorithm="none"
    )
    with pytest.raises(AuthenticationError):
        signer.read(unsigned)
    with pytest.raises(InputError, match="32"):
        TokenSigner("short", ttl_seconds=60)


# A forest of units: each node's parent has a smaller index (or none).
forests = st.lists(st.integers(min_value=-1, max_value=30), min_size=1, max_size=30).map(
    lambda parents: [(f"u{i}", f"u{p}" if 0 <= p < i else None) for i, p in enumerate(parents)]
)


@settings(max_examples=200, deadline=None)
@given(tree=forests, picks=st.lists(st.integers(min_value=0, max_value=29), max_size=3))
def test_jurisdiction_is_the_downward_closure(
    tree: list[tuple[str, str | None]], picks: list[int]
) -> None:
    roots = {f"u{i}" for i in picks if i < len(tree)}
    scope = Jurisdiction.resolve(units=[f"g:{r}" for r in roots], trees={"g": tree})
    parent = dict(tree)

    def under_a_root(code: str | None) -> bool:
        while code is not None:
            if code in roots:
                return True
            code = parent[code]
        return False

    assert scope.codes("g") == {code for code, _ in tree if under_a_root(code)}
    assert scope.codes("other") == frozenset()
    assert Jurisdiction.everything().codes("g") is None


def test_redaction_of_a_locate_answer() -> None:
    grid = LevelAnswer(level="grid", code="A", name="甲", status="ok")
    micro = LevelAnswer(
        level="micro_grid",
        code="B1",
        name="乙一",
        status="ambiguous",
        boundary_distance_m=3.0,
        candidates=(Candidate("A1", "甲一", 0.4), Candidate("B1", "乙一", 0.6)),
    )
    match = Match(key="BB-1", score=0.95, address="x", standard=parse_address("x"), certain=True)
    answer = LocateAnswer(
        input=LocateInput(address="x"),
        status="ok",
        layers={"governance": LayerAnswer.of([grid, micro])},
        responsible=(
            StaffMember(1, "governance", "B1", "grid_worker", "王乙", None),
            StaffMember(2, "governance", "A", "grid_worker", "李甲", None),
        ),
        lon=0.5,
        lat=0.5,
        address=AddressAnswer(input="x", parsed={}, candidates=(match,), best=match),
    )
    jurisdiction = Jurisdiction.resolve(
        units=["governance:A"],
        trees={"governance": [("A", None), ("A1", "A"), ("B", None), ("B1", "B")]},
    )
    jurisdiction = dataclasses.replace(jurisdiction, area=shapely.box(0, 0, 1, 1))
    out = answer.redacted(jurisdiction).to_dict()
    grid_out, micro_out = out["layers"]["governance"]["units"]
    assert grid_out["code"] == "A"
    assert micro_out["code"] is None and micro_out["name"] is None
    assert micro_out["status"] == "restricted"
    assert micro_out["candidates"] == [{"code": "A1", "name": "甲一", "share": 0.4}]
    assert out["layers"]["governance"]["status"] == "restricted"
    assert [p["name"] for p in out["responsible"]] == ["李甲"]
    assert out["address"]["candidates"] == [] and out["address"]["building_key"] == "BB-1"
    assert "乙" not in str(out)
    # Outside the caller's area: nothing but the caller's own words.
    away = dataclasses.replace(answer, lon=5.0, lat=5.0).redacted(jurisdiction).to_dict()
    assert away == {
        "input": {"address": "x", "at": None},
        "status": "outside_jurisdiction",
        "address": {"input": "x", "parsed": {}, "candidates": []},
        "layers": {},
        "responsible": [],
    }


def test_users_keys_and_sign_in(db: Database, tmp_path: Path) -> None:
    load_two_grids(db, tmp_path)
    imported = {e.action: e.detail for e in audit_log(db, action="places")[0]}
    assert imported == {
        "places.import.buildings": {"source": "buildings.geojson", "rows": 2},
        "places.import.households": {"source": "households.csv", "rows": 4},
    }
    assert acc.ensure_admin(db) is not None and acc.ensure_admin(db) is None
    user, password = acc.create_user(
        db, username="Li.Jia", role="网格员", units=[f"governance:{GRID_A}"], actor=SYSTEM
    )
    assert user.username == "li.jia" and user.role is Role.GRID_WORKER and password
    assert acc.authenticate_password(db, username="li.jia", password=password).principal.units == (
        f"governance:{GRID_A}",
    )
    with pytest.raises(AuthenticationError, match="wrong user name or password"):
        acc.authenticate_password(db, username="li.jia", password=password + "x")
    with pytest.raises(AuthenticationError, match="wrong user name or password"):
        acc.authenticate_password(db, username="nobody", password=password)
    with pytest.raises(ConflictError):
        acc.create_user(
            db, username="li.jia", role="viewer", units=[f"governance:{GRID_A}"], actor=SYSTEM
        )
    with pytest.raises(NotFoundError, match="no current unit"):
        acc.create_user(db, username="x1", role="viewer", units=["governance:999"], actor=SYSTEM)
    with pytest.raises(InputError, match="at least one unit"):
        acc.create_user(db, username="x2", role="viewer", actor=SYSTEM)
    with pytest.raises(InputError, match="LAYER:CODE"):
        acc.create_user(db, username="x3", role="viewer", units=[GRID_A], actor=SYSTEM)
    with pytest.raises(InputError, match="user name"):
        acc.create_user(db, username="bad name!", role="admin", actor=SYSTEM)
    # Changing the password ends earlier tokens; disabling ends sign-in.
    before = acc.get_user(db, username="li.jia").password_version
    acc.reset_password(db, username="li.jia", password="a-new-long-secret", actor=SYSTEM)
    with pytest.raises(AuthenticationError, match="password has changed"):
        acc.principal_for_user(db, username="li.jia", version=before)
    acc.update_user(db, username="li.jia", active=False, actor=SYSTEM)
    with pytest.raises(AuthenticationError):
        acc.authenticate_password(db, username="li.jia", password="a-new-long-secret")
    with pytest.raises(ConflictError, match="last active administrator"):
        acc.update_user(db, username="admin", active=False, actor=SYSTEM)
    key, token = acc.create_api_key(
        db, name="12345 热线", role="dispatcher", units=[f"governance:{GRID_B}"], actor=SYSTEM
    )
    assert acc.authenticate_api_key(db, token=token).role is Role.DISPATCHER
    with pytest.raises(AuthenticationError):
        acc.authenticate_api_key(db, token=token[:-1] + ("A" if token[-1] != "A" else "B"))
    acc.revoke_api_key(db, key_id=key.key_id, actor=SYSTEM)
    with pytest.raises(AuthenticationError, match="revoked"):
        acc.authenticate_api_key(db, token=token)
    actions = [e.action for e in audit_log(db, limit=100)[0]]
    for action in (
        "user.create",
        "user.password",
        "user.update",
        "api_key.create",
        "api_key.revoke",
    ):
        assert action in actions
    assert actions.count("auth.failed") == 3 and "auth.login" in actions


def test_audit_log_is_append_only_in_the_database(db: Database) -> None:
    acc.ensure_admin(db)
    for statement in ("UPDATE audit_log SET actor = 'nobody'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"), db.engine.begin() as connection:
            connection.execute(text(statement))
    assert audit_log(db)[1] == 1
    db.truncate()  # test suites and demo resets only
    assert audit_log(db)[1] == 0
    acc.ensure_admin(db)
    assert audit_log(db)[1] == 1


def test_changes_are_audited_in_their_transaction(db: Database) -> None:
    operator = Principal(kind="cli", name="ops", role=Role.ADMIN)
    load_governance(db)
    entries, _ = audit_log(db, action="boundaries.import")
    assert [e.target for e in reversed(entries)] == [
        "layer:governance:county",
        "layer:governance:street",
        "layer:governance:community",
    ]
    assert entries[0].actor == "tongge" and entries[0].detail["created"] == len(COMMUNITIES)
    broken = frame({"350502001001": COMMUNITIES["350502001001"]})
    broken.loc[0, "geometry"] = broken.geometry[0].buffer(0.01)  # overlaps its neighbours
    with pytest.raises(ValidationFailedError):
        import_units(
            db, units=broken, layer="governance", level="community", source="bad", actor=operator
        )
    assert audit_log(db, actor="ops")[1] == 0  # nothing written, nothing audited
    define_layer(db, spec=LayerSpec("fire", levels=(LevelSpec("zone"),)), actor=operator)
    member = add_staff(
        db, layer="governance", unit_code="350502001001", role="cadre", name="赵", actor=operator
    )
    end_staff(db, staff_id=member.id, actor=operator)
    assert [(e.action, e.target) for e in reversed(audit_log(db, actor="ops")[0])] == [
        ("layer.define", "layer:fire"),
        ("staff.create", "unit:governance:350502001001"),
        ("staff.end", f"staff:{member.id}"),
    ]
    out = Path(db.url.rsplit("/", 1)[-1]).with_suffix(".geojson").name
    target = Path(tempfile.mkdtemp()) / out
    export_layer(db, layer="governance", out=target, fmt="geojson", actor=operator)
    exported = audit_log(db, actor="ops")[0]
    newest = exported[0]
    assert (newest.action, newest.detail["units"]) == ("units.export", 7)


def test_cli_manages_users_keys_and_shows_the_audit(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_two_grids(db, tmp_path)
    monkeypatch.setenv("TONGGE_DATABASE_URL", db.url)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        made = runner.invoke(
            cli, ["users", "add", "zhou", "--role", "grid_worker", "--unit", f"governance:{GRID_A}"]
        )
        assert made.exit_code == 0, made.stderr
        assert "password" in made.stderr
        bad = runner.invoke(
            cli, ["users", "add", "wu", "--role", "grid_worker", "--unit", "governance:404"]
        )
        assert bad.exit_code == 2 and "no current unit" in bad.stderr
        listed = runner.invoke(cli, ["users", "list", "--format", "json"])
        assert [u["username"] for u in json.loads(listed.stdout)] == ["zhou"]
        key = runner.invoke(
            cli, ["keys", "create", "12345 hotline", "--unit", f"governance:{GRID_A}"]
        )
        assert key.exit_code == 0 and "tg_" in key.stderr
        out = tmp_path / "micro.geojson"
        exported = runner.invoke(
            cli,
            [
                "export",
                "--layer",
                "governance",
                "-o",
                str(out),
                "--format",
                "geojson",
                "--level",
                "micro_grid",
            ],
        )
        assert exported.exit_code == 0, exported.stderr
        shown = runner.invoke(cli, ["audit", "--format", "json", "--actor", cli_principal().name])
        actions = [e["action"] for e in json.loads(shown.stdout)["entries"]]
        assert actions == ["units.export", "api_key.create", "user.create"]
        disabled = runner.invoke(cli, ["users", "set", "zhou", "--disabled"])
        assert disabled.exit_code == 0 and "disabled" in disabled.stderr
    finally:
        get_settings.cache_clear()
    assert MICRO_A[0] in out.read_text(encoding="utf-8")


def test_init_prints_a_one_time_admin_password_and_serve_needs_a_key(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TONGGE_DATABASE_URL", db.url)
    monkeypatch.delenv("TONGGE_SECRET_KEY")
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        first = runner.invoke(cli, ["init"])
        assert first.exit_code == 0 and "user: admin" in first.stderr
        password = first.stderr.split("password: ")[1].split()[0]
        assert acc.authenticate_password(db, username="admin", password=password).role is Role.ADMIN
        again = runner.invoke(cli, ["init"])
        assert again.exit_code == 0 and "password" not in again.stderr
        refused = runner.invoke(cli, ["serve", "--port", "1"])
        assert refused.exit_code == 2 and "TONGGE_SECRET_KEY" in refused.stderr
    finally:
        get_settings.cache_clear()
