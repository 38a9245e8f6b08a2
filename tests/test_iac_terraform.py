"""iac/terraform.py: Terraform files read as blocks with file and line, the backend reader, parse errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from betcycle.errors import UserError
from betcycle.iac import records, terraform
from tests.conftest import write_tree

REPO = Path(__file__).resolve().parents[1]

BACKEND = """\
terraform {
  required_version = ">= 1.11"
  backend "s3" {
    bucket         = "betcycle-tfstate-staging"
    key            = "staging/terraform.tfstate"
    region         = "eu-west-1"
    dynamodb_table = "betcycle-tflock"
    encrypt        = true
  }
}
"""


def test_backend_reads_the_literal_s3_settings(tmp_path: Path) -> None:
    write_tree(tmp_path, {"env/backend.tf": BACKEND, "env/main.tf": "locals {\n  a = 1\n}\n"})
    assert terraform.backend(tmp_path / "env") == {
        "bucket": "betcycle-tfstate-staging",
        "key": "staging/terraform.tfstate",
        "region": "eu-west-1",
        "dynamodb_table": "betcycle-tflock",
        "encrypt": True,
    }


def test_backend_is_empty_without_a_backend_block(tmp_path: Path) -> None:
    write_tree(tmp_path, {"env/main.tf": 'terraform {\n  required_version = ">= 1.11"\n}\n'})
    assert terraform.backend(tmp_path / "env") == {}


def test_two_backends_are_an_error_naming_the_second(tmp_path: Path) -> None:
    write_tree(tmp_path, {"env/a.tf": BACKEND, "env/b.tf": BACKEND})
    with pytest.raises(UserError) as err:
        terraform.backend(tmp_path / "env", tmp_path)
    assert err.value.location() == "env/b.tf:1"
    assert "more than one backend" in err.value.message


def test_blocks_carry_their_file_and_lines(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "c/main.tf": """\
            # a comment
            resource "aws_s3_bucket" "logs" {
              bucket = "logs"
            }

            resource "aws_s3_bucket_versioning" "logs" {
              bucket = aws_s3_bucket.logs.id
              versioning_configuration {
                status = "Enabled"
              }
            }
            """
        },
    )
    blocks = terraform.config_blocks(tmp_path / "c", tmp_path)
    assert [(b.kind, b.labels, b.file, b.line, b.end_line) for b in blocks] == [
        ("resource", ("aws_s3_bucket", "logs"), "c/main.tf", 2, 4),
        ("resource", ("aws_s3_bucket_versioning", "logs"), "c/main.tf", 6, 11),
    ]
    assert blocks[1].body == {
        "bucket": "${aws_s3_bucket.logs.id}",
        "versioning_configuration": [{"status": "Enabled"}],
    }


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('resource "a" "b" {\n  x = 1\n', 2, "unexpected end of file"),
        ('resource "a" "b" {\n  x = \n}\n', 2, "syntax error"),
        ('resource "a" "b" {\n  x = 1\n  @\n}\n', 3, "syntax error"),
    ],
)
def test_a_syntax_error_names_the_file_and_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    write_tree(tmp_path, {"c/main.tf": text})
    with pytest.raises(UserError) as err:
        terraform.config_blocks(tmp_path / "c", tmp_path)
    assert err.value.location() == f"c/main.tf:{line}"
    assert err.value.message.startswith("not valid Terraform (HCL): " + words)


# --- records: roots, modules, variables, tags, related ---------------------------------------------------

MODULE = """\
variable "name" {}
variable "encrypted" {
  default = false
}
locals {
  full = "${var.name}-data"
}
resource "aws_ebs_volume" "this" {
  availability_zone = "eu-west-1a"
  encrypted         = var.encrypted
  tags              = { Name = local.full }
}
"""


def _records(tmp_path: Path) -> dict[str, list[records.TfResource]]:
    out: dict[str, list[records.TfResource]] = {}
    for rec in records.load_tree(tmp_path / "terraform", tmp_path):
        out.setdefault(rec.address, []).append(rec)
    return out


def test_a_module_gives_one_record_per_calling_root_with_its_arguments(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "terraform/modules/disk/main.tf": MODULE,
            "terraform/environments/staging/main.tf": """\
                provider "aws" {
                  default_tags {
                    tags = { environment = var.env }
                  }
                }
                variable "env" {
                  default = "dev"
                }
                module "disk" {
                  source = "../../modules/disk"
                  name   = var.env
                }
                """,
            "terraform/environments/staging/terraform.tfvars": 'env = "staging"\n',
            "terraform/environments/prod/main.tf": """\
                module "disk" {
                  source    = "../../modules/disk"
                  name      = "prod"
                  encrypted = true
                }
                """,
        },
    )
    found = _records(tmp_path)
    disks = {r.root: r for r in found["module.disk.aws_ebs_volume.this"]}
    assert sorted(disks) == ["prod", "staging"]
    staging, prod = disks["staging"], disks["prod"]
    assert (staging.file, staging.line, staging.config) == (
        "terraform/modules/disk/main.tf",
        8,
        "terraform/modules/disk",
    )
    assert staging.doc["attributes"]["encrypted"] is False  # the variable's default
    assert prod.doc["attributes"]["encrypted"] is True  # the module call's argument
    assert staging.doc["tags"] == {"environment": "staging", "Name": "staging-data"}  # tfvars, default_tags
    assert prod.doc["tags"] == {"Name": "prod-data"}  # prod's provider has no default_tags
    assert staging.lines[("attributes", "encrypted")] == 10
    roots = {r.name: r for r in found["staging"] + found["prod"]}
    assert roots["staging"].type == records.ROOT_TYPE
    assert roots["prod"].doc["resources"] == {"aws_ebs_volume": [prod.doc["attributes"]]}


def test_related_resources_by_reference_or_literal_bucket_and_count_zero(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "terraform/live/main.tf": """\
                resource "aws_s3_bucket" "a" {
                  bucket = "bucket-a"
                }
                resource "aws_s3_bucket_versioning" "a" {
                  bucket = aws_s3_bucket.a.id
                }
                resource "aws_s3_bucket_policy" "a" {
                  bucket = "bucket-a"
                }
                resource "aws_s3_bucket_public_access_block" "gone" {
                  count  = 0
                  bucket = aws_s3_bucket.a.id
                }
                """
        },
    )
    found = _records(tmp_path)
    assert "aws_s3_bucket_public_access_block.gone" not in found
    (bucket,) = found["aws_s3_bucket.a"]
    assert sorted(bucket.doc["related"]) == ["aws_s3_bucket_policy", "aws_s3_bucket_versioning"]
    assert bucket.root == "live"


def test_a_module_nobody_calls_is_read_alone(tmp_path: Path) -> None:
    write_tree(tmp_path, {"terraform/modules/disk/main.tf": MODULE})
    (disk,) = _records(tmp_path)["aws_ebs_volume.this"]
    # no caller: a root of its own (folder name), variables at their defaults
    assert disk.root == "disk" and disk.doc["attributes"]["encrypted"] is False


def test_a_module_cycle_is_an_error_naming_the_call(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "terraform/root/main.tf": 'module "a" {\n  source = "../a"\n}\n',
            "terraform/a/main.tf": 'module "b" {\n  source = "../b"\n}\n',
            "terraform/b/main.tf": 'module "a" {\n  source = "../a"\n}\n',
        },
    )
    with pytest.raises(UserError) as err:
        records.load_tree(tmp_path / "terraform", tmp_path)
    assert err.value.location() == "terraform/b/main.tf:1"
    assert "module cycle" in err.value.message


def test_deep_nesting_is_an_input_error_not_a_crash(tmp_path: Path) -> None:
    write_tree(tmp_path, {"c/main.tf": 'resource "a" "b" {\n  x = ' + "[" * 3000 + "]" * 3000 + "\n}\n"})
    with pytest.raises(UserError) as err:
        terraform.config_blocks(tmp_path / "c", tmp_path)
    assert err.value.location() == "c/main.tf"
    assert err.value.message == "not valid Terraform (HCL): nested too deeply to read"


def test_the_shipped_terraform_parses_into_staging_and_prod(tmp_path: Path) -> None:
    shutil.copytree(REPO / "terraform", tmp_path / "terraform", ignore=shutil.ignore_patterns(".terraform"))
    found = records.load_tree(tmp_path / "terraform", tmp_path)
    roots = {r.name for r in found if r.type == records.ROOT_TYPE}
    assert {"staging", "prod"} <= roots
    for root in ("staging", "prod"):
        assert terraform.backend(tmp_path / "terraform/environments" / root).get("bucket")
    assert all(r.file.startswith("terraform/") and r.line >= 1 for r in found)
