"""terraform/: every .tf file parses, and each root configuration has what docs/infrastructure.md promises.

`terraform validate` needs the providers, so it runs only in .github/workflows/terraform.yml, and
`terraform fmt -check` runs in `nox -s lint` when terraform is installed. These checks need neither: they
read the files with python-hcl2, the parser `betcycle validate` and `betcycle state bootstrap` use.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import hcl2
import pytest
from lark.exceptions import UnexpectedInput

from tests.conftest import REPO, write_tree

TERRAFORM = REPO / "terraform"
TF_FILES = sorted(TERRAFORM.rglob("*.tf"))
ROOTS = sorted(p for p in (TERRAFORM / "environments").iterdir() if p.is_dir())
MODULES = sorted(p for p in (TERRAFORM / "modules").iterdir() if p.is_dir())

REQUIRED_TAGS = ("environment", "owner", "cost-center", "managed-by")
BACKEND_KEYS = ("bucket", "key", "region", "dynamodb_table")
# An exact version or a pessimistic constraint; ">= 6.0" alone would let any major version in.
PINNED = re.compile(r"^(=\s*)?\d+\.\d+\.\d+$|^~>\s*\d+\.\d+(\.\d+)?$")


def unquote(value: Any) -> Any:
    """python-hcl2 8 keeps the quotes of string literals and quoted keys."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def parse(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        result: dict[str, Any] = hcl2.load(f)
    return result


def blocks(tree: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = tree.get(kind, [])
    return found


def root_config_problems(root: Path) -> list[str]:
    """What docs/infrastructure.md requires of a root configuration, as messages naming the file."""
    problems: list[str] = []
    backend_tf, versions_tf, providers_tf = root / "backend.tf", root / "versions.tf", root / "providers.tf"
    for required in (backend_tf, versions_tf, providers_tf, root / "main.tf"):
        if not required.is_file():
            problems.append(f"{required.name}: missing")
    if problems:
        return problems

    backends = [b for t in blocks(parse(backend_tf), "terraform") for b in t.get("backend", [])]
    s3 = [body for b in backends for name, body in b.items() if unquote(name) == "s3"]
    if len(s3) != 1:
        problems.append('backend.tf: needs exactly one backend "s3" block')
    else:
        for key in BACKEND_KEYS:
            value = unquote(s3[0].get(key))
            if not isinstance(value, str) or not value or "${" in value:
                problems.append(f'backend.tf: backend "s3" needs a literal {key}')
        if s3[0].get("encrypt") is not True:
            problems.append('backend.tf: backend "s3" needs encrypt = true')
        # main.tf names the same bucket and table for module "state" (it adopts them with import blocks).
        state_names = {unquote(s3[0].get("bucket")), unquote(s3[0].get("dynamodb_table"))}
        main_locals = {
            unquote(v)
            for loc in blocks(parse(root / "main.tf"), "locals")
            for v in loc.values()
            if isinstance(v, str)
        }
        for missing in sorted(n for n in state_names if isinstance(n, str) and n not in main_locals):
            problems.append(f'main.tf: no local names the backend\'s {missing!r} for module "state"')

    terraform = blocks(parse(versions_tf), "terraform")
    if not any(t.get("required_version") for t in terraform):
        problems.append("versions.tf: no required_version")
    providers = [p for t in terraform for req in t.get("required_providers", []) for p in req.items()]
    providers = [(name, spec) for name, spec in providers if name != "__is_block__"]
    if not providers:
        problems.append("versions.tf: no required_providers")
    for name, spec in providers:
        version = unquote(spec.get("version", "")) if isinstance(spec, dict) else ""
        if not PINNED.match(version.strip()):
            problems.append(f"versions.tf: provider {name} is not pinned (= x.y.z or ~> x.y): {version!r}")

    aws = [
        body for p in blocks(parse(providers_tf), "provider") for n, body in p.items() if unquote(n) == "aws"
    ]
    if not aws:
        problems.append('providers.tf: no provider "aws"')
    for body in aws:
        tags = {
            unquote(k): unquote(v)
            for dt in body.get("default_tags", [])
            for k, v in dt.get("tags", {}).items()
        }
        for tag in REQUIRED_TAGS:
            if not tags.get(tag):
                problems.append(f"providers.tf: default_tags has no {tag}")
        if tags.get("managed-by") not in (None, "terraform"):
            problems.append('providers.tf: default_tags managed-by must be "terraform"')
        if tags.get("environment") not in (None, root.name):
            problems.append(f"providers.tf: default_tags environment must be {root.name!r}")
    return problems


def test_the_tree_has_both_environments_and_the_modules() -> None:
    assert [r.name for r in ROOTS] == ["prod", "staging"]
    names = {m.name for m in MODULES}
    assert {"network", "eks", "ecr", "state", "budgets", "github-oidc", "cloudtrail"} <= names


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_tf_file_parses(path: Path) -> None:
    assert isinstance(parse(path), dict)


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_every_module_has_the_four_files(module: Path) -> None:
    assert sorted(p.name for p in module.glob("*.tf")) == [
        "main.tf",
        "outputs.tf",
        "variables.tf",
        "versions.tf",
    ]


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: p.name)
def test_root_configuration(root: Path) -> None:
    assert root_config_problems(root) == []


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: p.name)
def test_no_fake_lock_file(root: Path) -> None:
    # A lock file is generated with `terraform providers lock` (docs/infrastructure.md); a hand-made one
    # would hold checksums nobody verified.
    lock = root / ".terraform.lock.hcl"
    if lock.exists():
        assert 'provider "registry.terraform.io/hashicorp/aws"' in lock.read_text(encoding="utf-8")
        assert "h1:" in lock.read_text(encoding="utf-8")


def test_prod_api_endpoint_is_private() -> None:
    main = parse(TERRAFORM / "environments/prod/main.tf")
    eks = [body for m in blocks(main, "module") for n, body in m.items() if unquote(n) == "eks"]
    assert len(eks) == 1
    assert eks[0]["endpoint_public_access"] is False


def test_a_broken_file_does_not_parse(tmp_path: Path) -> None:
    write_tree(tmp_path, {"main.tf": 'resource "aws_s3_bucket" "x" {\n  bucket = \n'})
    with pytest.raises(UnexpectedInput, match="line 2"):
        parse(tmp_path / "main.tf")


def test_the_checks_catch_a_bad_root_configuration(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "qa",
        {
            "main.tf": 'locals {\n  state_bucket = "other"\n}\n',
            "backend.tf": """\
                terraform {
                  backend "s3" {
                    bucket = "qa-state"
                    key    = "qa/terraform.tfstate"
                    region = "eu-west-1"
                  }
                }
                """,
            "versions.tf": """\
                terraform {
                  required_providers {
                    aws = {
                      source  = "hashicorp/aws"
                      version = ">= 6.0"
                    }
                  }
                }
                """,
            "providers.tf": """\
                provider "aws" {
                  default_tags {
                    tags = {
                      environment = "staging"
                      managed-by  = "hand"
                    }
                  }
                }
                """,
        },
    )
    assert root_config_problems(root) == [
        'backend.tf: backend "s3" needs a literal dynamodb_table',
        'backend.tf: backend "s3" needs encrypt = true',
        "main.tf: no local names the backend's 'qa-state' for module \"state\"",
        "versions.tf: no required_version",
        "versions.tf: provider aws is not pinned (= x.y.z or ~> x.y): '>= 6.0'",
        "providers.tf: default_tags has no owner",
        "providers.tf: default_tags has no cost-center",
        'providers.tf: default_tags managed-by must be "terraform"',
        "providers.tf: default_tags environment must be 'qa'",
    ]
    assert root_config_problems(tmp_path / "missing") == [
        "backend.tf: missing",
        "versions.tf: missing",
        "providers.tf: missing",
        "main.tf: missing",
    ]
