"""Terraform in `betcycle validate` and the shipped TF policies: findings with the .tf file and line, every
output format, default_tags, waivers, parse errors, `policy test` on the HCL examples (issue 10.2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import write_tree

REPO = Path(__file__).resolve().parents[1]

# a root configuration every TF policy accepts: tags through default_tags, a CloudTrail trail, and a
# bucket with its encryption and public access block in a module
SECURE = {
    "terraform/environments/staging/providers.tf": """\
        provider "aws" {
          region = "eu-west-1"
          default_tags {
            tags = {
              environment   = var.environment
              owner         = "platform"
              "cost-center" = "cc-100"
              managed-by    = "terraform"
            }
          }
        }
        """,
    "terraform/environments/staging/variables.tf": """\
        variable "environment" {
          type    = string
          default = "staging"
        }
        """,
    "terraform/environments/staging/main.tf": """\
        module "logs" {
          source = "../../modules/bucket"
          name   = "betcycle-logs-${var.environment}"
        }

        resource "aws_cloudtrail" "account" {
          name                       = "account"
          s3_bucket_name             = module.logs.name
          is_multi_region_trail      = true
          enable_log_file_validation = true
        }
        """,
    "terraform/modules/bucket/main.tf": """\
        variable "name" {
          type = string
        }

        resource "aws_s3_bucket" "this" {
          bucket = var.name
        }

        resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
          bucket = aws_s3_bucket.this.id
          rule {
            apply_server_side_encryption_by_default {
              sse_algorithm = "aws:kms"
            }
          }
        }

        resource "aws_s3_bucket_public_access_block" "this" {
          bucket                  = aws_s3_bucket.this.id
          block_public_acls       = true
          block_public_policy     = true
          ignore_public_acls      = true
          restrict_public_buckets = true
        }

        output "name" {
          value = aws_s3_bucket.this.bucket
        }
        """,
}

OPEN_SSH = """\
    resource "aws_security_group" "bastion" {
      name = "bastion"

      ingress {
        from_port   = 22
        to_port     = 22
        protocol    = "tcp"
        cidr_blocks = ["0.0.0.0/0"]
      }
    }
    """

PLAIN_BUCKET = """\
    resource "aws_s3_bucket" "uploads" {
      bucket = "betcycle-uploads"
    }

    resource "aws_s3_bucket_public_access_block" "uploads" {
      bucket                  = aws_s3_bucket.uploads.id
      block_public_acls       = true
      block_public_policy     = true
      ignore_public_acls      = true
      restrict_public_buckets = true
    }
    """


@pytest.fixture
def repo(example: Path) -> Path:
    """The fixture repository with the shipped TF policies and the secure staging root configuration."""
    for f in sorted((REPO / "policies").glob("TF*.yaml")):
        shutil.copy2(f, example / "policies" / f.name)
    write_tree(example, SECURE)
    return example


@pytest.fixture
def run(cli, crd_cache: Path):
    """`betcycle --root REPO validate ARGS` with the CRD schemas, so only Terraform findings fail it."""

    def validate(repo: Path, *args: str | Path) -> tuple[int, str, str]:
        return cli("--root", repo, "validate", "--schema-cache", crd_cache, *args)

    return validate


def test_the_secure_configuration_passes(run, repo: Path, cli) -> None:
    code, out, err = run(repo, "--format", "json")
    assert code == 0, out + err
    summary = json.loads(out)["summary"]
    assert summary["errors"] == 0
    assert summary["terraform"] == 4  # the trail, and the module's bucket with its two companions


def test_ssh_open_to_the_world_fails_naming_the_file_and_line(run, repo: Path, cli) -> None:
    write_tree(repo, {"terraform/environments/staging/bastion.tf": OPEN_SSH})
    code, out, _ = run(repo)
    assert code == 1
    assert "staging: terraform/environments/staging/bastion.tf" in out
    assert "error [policy/TF004] aws_security_group.bastion ingress[0]:" in out
    assert "ingress from anywhere (0.0.0.0/0 or ::/0) is open on a port other than 80 or 443" in out
    assert "    at terraform/environments/staging/bastion.tf:4\n" in out  # the ingress block


def test_a_bucket_without_encryption_fails_naming_the_file_and_line(run, repo: Path, cli) -> None:
    write_tree(repo, {"terraform/environments/staging/uploads.tf": PLAIN_BUCKET})
    code, out, _ = run(repo, "--format", "json")
    assert code == 1
    findings = [f for f in json.loads(out)["findings"] if f["severity"] == "error"]
    assert findings == [
        {
            "env": "staging",
            "hint": findings[0]["hint"],
            "line": 1,
            "message": "S3 buckets are encrypted at rest: no aws_s3_bucket_server_side_encryption_configuration "
            "refers to this bucket",
            "resource": "aws_s3_bucket.uploads",
            "rule": "policy/TF001",
            "severity": "error",
            "source": "terraform/environments/staging/uploads.tf",
        }
    ]


def test_every_format_carries_the_file_and_line(run, repo: Path, cli) -> None:
    write_tree(repo, {"terraform/environments/staging/bastion.tf": OPEN_SSH})
    code, out, _ = run(repo, "--format", "sarif")
    assert code == 1
    results = json.loads(out)["runs"][0]["results"]
    (result,) = [r for r in results if r["ruleId"] == "policy/TF004"]
    location = result["locations"][0]["physicalLocation"]
    assert location == {
        "artifactLocation": {"uri": "terraform/environments/staging/bastion.tf", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 4},
    }
    rules = json.loads(out)["runs"][0]["tool"]["driver"]["rules"]
    assert any(r["id"] == "policy/TF004" for r in rules)
    code, out, _ = run(repo, "--format", "github")
    assert code == 1
    assert "::error file=terraform/environments/staging/bastion.tf,line=4," in out


def test_default_tags_satisfy_the_tag_rule_and_modules_inherit_them(run, repo: Path, cli) -> None:
    code, out, _ = run(repo)
    assert code == 0 and "TF003" not in out
    # without the root's default_tags, the module's bucket (read for the staging root) has no tags
    (repo / "terraform/environments/staging/providers.tf").write_text(
        'provider "aws" {\n  region = "eu-west-1"\n}\n'
    )
    code, out, _ = run(repo)
    assert code == 1
    assert "staging: terraform/modules/bucket/main.tf" in out
    assert "module.logs.aws_s3_bucket.this tags.cost-center: AWS resources carry" in out
    assert "    at terraform/modules/bucket/main.tf:5\n" in out


def test_the_prod_eks_rule_follows_the_module_variable_per_root(run, repo: Path, cli) -> None:
    cluster = """\
        variable "public" {
          type    = bool
          default = true
        }

        resource "aws_eks_cluster" "this" {
          name     = "main"
          role_arn = "arn:aws:iam::123456789012:role/eks"
          vpc_config {
            subnet_ids             = ["subnet-1"]
            endpoint_public_access = var.public
          }
        }
        """
    write_tree(
        repo,
        {
            "terraform/modules/eks/main.tf": cluster,
            "terraform/environments/staging/eks.tf": 'module "eks" {\n  source = "../../modules/eks"\n}\n',
            "terraform/environments/prod/main.tf": SECURE["terraform/environments/staging/main.tf"]
            + 'module "eks" {\n  source = "../../modules/eks"\n  public = false\n}\n',
            "terraform/environments/prod/providers.tf": SECURE["terraform/environments/staging/providers.tf"],
            "terraform/environments/prod/variables.tf": 'variable "environment" {\n  default = "prod"\n}\n',
        },
    )
    code, out, _ = run(repo)
    assert code == 0, out  # public in staging (allowed there), private in prod
    (repo / "terraform/environments/prod/main.tf").write_text(
        SECURE["terraform/environments/staging/main.tf"]
        + 'module "eks" {\n  source = "../../modules/eks"\n}\n'
    )
    code, out, _ = run(repo)
    assert code == 1
    assert "prod: terraform/modules/eks/main.tf" in out
    assert "module.eks.aws_eks_cluster.this vpc_config[0].endpoint_public_access" in out
    assert "    at terraform/modules/eks/main.tf:11\n" in out
    assert "staging: terraform/modules/eks" not in out


def test_a_waiver_downgrades_the_finding_and_an_expired_one_is_an_error(run, repo: Path, cli) -> None:
    write_tree(repo, {"terraform/environments/staging/bastion.tf": OPEN_SSH})
    waiver = """\
        waivers:
          - policy: TF004
            scope:
              env: staging
              resource: aws_security_group/bastion
            reason: break-glass bastion until SSM is rolled out (OPS-12)
            owner: team-platform
            expires: {expires}
        """
    (repo / "policies/waivers.yaml").write_text(waiver.replace("        ", "").format(expires="2999-12-31"))
    code, out, _ = run(repo)
    assert code == 0, out
    assert "info [policy/TF004] aws_security_group.bastion ingress[0]: waived: " in out
    (repo / "policies/waivers.yaml").write_text(waiver.replace("        ", "").format(expires="2000-01-01"))
    code, out, _ = run(repo)
    assert code == 1
    assert "waiver for TF004 (env=staging, resource=aws_security_group/bastion) expired on 2000-01-01" in out
    assert "error [policy/TF004] aws_security_group.bastion" in out


def test_a_waiver_for_another_resource_does_not_apply(run, repo: Path, cli) -> None:
    write_tree(repo, {"terraform/environments/staging/bastion.tf": OPEN_SSH})
    (repo / "policies/waivers.yaml").write_text(
        "waivers:\n  - policy: TF004\n    scope: {resource: aws_security_group/other}\n"
        "    reason: r\n    owner: o\n    expires: 2999-12-31\n"
    )
    code, out, _ = run(repo)
    assert code == 1 and "error [policy/TF004]" in out


def test_a_parse_error_exits_2_with_the_file_and_line(run, repo: Path, cli) -> None:
    write_tree(
        repo, {"terraform/environments/staging/broken.tf": 'resource "aws_s3_bucket" "x" {\n  bucket = \n}\n'}
    )
    code, _, err = run(repo)
    assert code == 2
    assert err.splitlines()[0].startswith(
        "error: terraform/environments/staging/broken.tf:2: not valid Terraform (HCL): syntax error"
    )
    assert "Traceback" not in err


def test_a_tf_path_reports_only_that_file_with_its_configuration(repo: Path, cli) -> None:
    write_tree(
        repo,
        {
            "terraform/environments/staging/bastion.tf": OPEN_SSH,
            "terraform/environments/staging/uploads.tf": PLAIN_BUCKET,
        },
    )
    code, out, _ = cli("--root", repo, "validate", repo / "terraform/environments/staging/bastion.tf")
    assert code == 1 and "policy/TF004" in out and "uploads.tf" not in out
    # the module's file alone: read with the root calling it (its variables, its default_tags)
    code, out, _ = cli("--root", repo, "validate", repo / "terraform/modules/bucket/main.tf")
    assert code == 0, out


def test_a_tf_path_outside_the_repository_is_its_own_root_configuration(
    tmp_path: Path, example: Path, cli
) -> None:
    for f in sorted((REPO / "policies").glob("TF*.yaml")):
        shutil.copy2(f, example / "policies" / f.name)
    write_tree(tmp_path, {"elsewhere/main.tf": OPEN_SSH})
    code, out, _ = cli("--root", example, "validate", tmp_path / "elsewhere/main.tf")
    assert code == 1
    assert "elsewhere: " in out and "policy/TF004" in out and "policy/TF009" in out


def test_terraform_findings_are_policy_findings_for_checks(run, repo: Path, cli) -> None:
    write_tree(repo, {"terraform/environments/staging/bastion.tf": OPEN_SSH})
    code, out, _ = run(repo, "--checks", "schema,crossref")
    assert code == 0 and "TF004" not in out
    code, out, _ = run(repo, "--no-policies")
    assert code == 0 and "TF004" not in out
    code, out, _ = run(repo, "--env", "prod")
    assert code == 0 and "TF004" not in out  # only the prod root configuration (there is none)
    code, out, _ = run(repo, "--env", "staging", "--checks", "policy")
    assert code == 1 and "TF004" in out


def test_policy_test_runs_the_hcl_examples(tmp_path: Path, cli) -> None:
    (tmp_path / "policies").mkdir()
    for f in sorted((REPO / "policies").glob("TF*.yaml")):
        shutil.copy2(f, tmp_path / "policies" / f.name)
    code, out, _ = cli("--root", tmp_path, "policy", "test")
    assert code == 0, out
    ids = [line.split()[1] for line in out.splitlines() if line.startswith("ok ")]
    assert ids == [f"TF00{i}" for i in range(1, 10)]


def test_policy_test_catches_an_example_that_does_not_fail(tmp_path: Path, cli) -> None:
    text = (REPO / "policies/TF008.yaml").read_text()
    broken = text.replace(
        '  fail:\n    - hcl: |\n        resource "aws_ebs_volume" "data" {\n',
        '  fail:\n    - hcl: |\n        resource "aws_ebs_volume" "data" {\n          encrypted = true\n',
    )
    assert broken != text
    write_tree(tmp_path, {"policies/TF008.yaml": broken})
    code, out, _ = cli("--root", tmp_path, "policy", "test")
    assert code == 1
    assert out.startswith("FAIL TF008 ebs-encrypted: fail example 1 (policies/TF008.yaml:")


def test_policy_list_shows_the_terraform_target(tmp_path: Path, cli) -> None:
    write_tree(tmp_path, {"policies/TF008.yaml": (REPO / "policies/TF008.yaml").read_text()})
    code, out, _ = cli("--root", tmp_path, "policy", "list")
    assert code == 0
    assert out.splitlines()[1].split()[:4] == ["TF008", "error", "terraform", "aws_ebs_volume"]
    code, out, _ = cli("--root", tmp_path, "policy", "list", "--format", "json")
    (row,) = json.loads(out)
    assert row["target"] == "terraform" and row["terraform"] == ["aws_ebs_volume"] and row["kinds"] == []


@pytest.mark.parametrize(
    ("match", "words"),
    [
        ("{kinds: [Deployment], terraform: [aws_s3_bucket]}", "match needs kinds (Kubernetes) or terraform"),
        ("{terraform: [AWS_S3]}", "terraform names resource types such as aws_s3_bucket"),
    ],
)
def test_a_bad_terraform_match_is_an_input_error(tmp_path: Path, cli, match: str, words: str) -> None:
    write_tree(
        tmp_path,
        {
            "policies/TT001.yaml": f"""\
                id: TT001
                name: t
                title: t
                severity: error
                rationale: r
                hint: h
                match: {match}
                schema: {{type: object}}
                """
        },
    )
    code, _, err = cli("--root", tmp_path, "policy", "list")
    assert code == 2 and words in err


def test_an_example_that_is_not_valid_hcl_names_the_policy_file_line(tmp_path: Path, cli) -> None:
    text = (REPO / "policies/TF008.yaml").read_text()
    broken = text.replace("          encrypted         = true\n", "          encrypted         =\n")
    assert broken != text
    write_tree(tmp_path, {"policies/TF008.yaml": broken})
    bad_line = broken.splitlines().index("          encrypted         =") + 1
    code, _, err = cli("--root", tmp_path, "policy", "test")
    assert code == 2
    first = err.splitlines()[0]
    assert first.startswith(f"error: policies/TF008.yaml:{bad_line}: example: not valid Terraform (HCL)")
