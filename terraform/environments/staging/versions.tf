# Terraform and provider versions. The exact provider build (with its checksums for Linux and macOS) is
# recorded in .terraform.lock.hcl, committed next to this file: docs/infrastructure.md, "Lock files".
terraform {
  required_version = ">= 1.11.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.27.0"
    }
  }
}
