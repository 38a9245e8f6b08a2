"""iac/terraform.py: Terraform files read as blocks with file and line, the backend reader, parse errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from betcycle.errors import UserError
from betcycle.iac import terraform
from tests.conftest import write_tree

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
