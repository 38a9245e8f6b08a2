"""Hints for unknown names (repo.suggest): the closest five at most, else how to list them, never all of them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from betcycle.model.repo import LIST_HINTS, suggest
from betcycle.validate import manifests
from betcycle.validate.crd import CrdSchemaStore
from betcycle.validate.engine import validate_schemas
from tests.conftest import FIXTURE_REPO, write_tree


@pytest.fixture
def big_repo(tmp_path: Path) -> Path:
    """The fixture repository with 60 more apps, shop-01 … shop-60 (none deployed)."""
    root = tmp_path / "repo"
    shutil.copytree(FIXTURE_REPO, root)
    write_tree(
        root,
        {
            f"apps/shop-{i:02}/app.yaml": f"name: shop-{i:02}\nowner: team-shop\nchart: service\n"
            for i in range(1, 61)
        },
    )
    return root


def names_in(hint: str) -> list[str]:
    return re.findall(r"'([^']+)'", hint)


def hint_of(err: str) -> str:
    [line] = [line for line in err.splitlines() if line.strip().startswith("hint:")]
    return line.strip().removeprefix("hint:").strip()


def test_a_values_file_for_an_unknown_app_names_at_most_five(big_repo: Path, cli) -> None:
    write_tree(big_repo, {"environments/dev/apps/shop-7.yaml": "replicas: 1\n"})
    code, _, err = cli("--root", big_repo, "render")
    assert code == 2
    assert "environments/dev/apps/shop-7.yaml: deploys unknown app 'shop-7'" in err
    hint = hint_of(err)
    assert hint.startswith("did you mean 'shop-") and "'shop-07'" in hint
    assert 1 <= len(names_in(hint)) <= 5 and set(names_in(hint)) <= {f"shop-{i:02}" for i in range(1, 61)}


def test_a_cli_argument_for_an_unknown_app_names_at_most_five(big_repo: Path, cli) -> None:
    code, _, err = cli("--root", big_repo, "validate", "--app", "shop-7")
    assert code == 2 and "unknown app 'shop-7'" in err
    assert 1 <= len(names_in(hint_of(err))) <= 5


def test_no_close_match_says_how_to_list_them(big_repo: Path, cli) -> None:
    code, _, err = cli("--root", big_repo, "validate", "--app", "zzzzzzzz")
    assert code == 2 and hint_of(err) == "`ls apps/` lists the apps (each folder with an app.yaml)"
    code, _, err = cli("--root", big_repo, "validate", "--env", "prdo")
    assert code == 2 and hint_of(err) == "did you mean 'prod'?"
    code, _, err = cli("--root", big_repo, "validate", "--env", "qqqqqq")
    assert code == 2 and hint_of(err) == "`ls environments/` lists the environments"


def test_unknown_chart(big_repo: Path, cli) -> None:
    write_tree(big_repo, {"apps/shop-01/app.yaml": "name: shop-01\nowner: team-shop\nchart: servise\n"})
    code, _, err = cli("--root", big_repo, "render")
    assert code == 2 and "unknown chart 'servise'" in err and hint_of(err) == "did you mean 'service'?"
    write_tree(big_repo, {"apps/shop-01/app.yaml": "name: shop-01\nowner: team-shop\nchart: qqqqqq\n"})
    code, _, err = cli("--root", big_repo, "render")
    assert code == 2 and hint_of(err) == "`ls charts/` lists the charts"


def test_suggest() -> None:
    known = [f"app-{i}" for i in range(100)]
    assert len(names_in(suggest("app", "app-1", known))) == 5
    assert suggest("app", "web", ["wbe", "api"]) == "did you mean 'wbe'?"
    assert suggest("app", "x", []) == f"there are no apps yet ({LIST_HINTS['app']})"
    assert suggest("policy", "BC999", ["XY001"]) == "`betcycle policy list` lists the policies"
    assert suggest("check", "qq", ["schema"]) == "check the check's spelling"


def test_a_misspelt_kind_suggests_served_kinds(tmp_path: Path) -> None:
    res = manifests.parse("apiVersion: apps/v1\nkind: Deploymnt\nmetadata: {name: x}\n", "x.yaml")
    [f] = validate_schemas(res, {None: "1.31"}, CrdSchemaStore(tmp_path)).findings
    assert (f.rule, f.hint) == ("schema/unknown-kind", "did you mean 'Deployment'?")
    res = manifests.parse("apiVersion: apps/v1\nkind: Qqqqqqqq\nmetadata: {name: x}\n", "x.yaml")
    [f] = validate_schemas(res, {None: "1.31"}, CrdSchemaStore(tmp_path)).findings
    assert f.hint.startswith("check the kind and apiVersion")


def test_an_app_not_deployed_to_the_environment_names_where_it_is(example: Path, cli) -> None:
    write_tree(
        example,
        {
            "apps/extra/app.yaml": "name: extra\nowner: team-x\nchart: service\n",
            "environments/dev/apps/extra.yaml": "replicas: 1\n",
        },
    )
    code, _, err = cli("--root", example, "set-image", "extra", "--env", "prod", "--tag", "1.2.3")
    assert code == 2 and "extra is not deployed to prod" in err
    assert hint_of(err) == "it is deployed to: dev"


def test_diff_for_an_unknown_environment(repo_git: Path, cli) -> None:
    code, _, err = cli("--root", repo_git, "diff", "--base", "HEAD", "--env", "prdo")
    assert code == 2 and "unknown environment 'prdo'" in err and hint_of(err) == "did you mean 'prod'?"
