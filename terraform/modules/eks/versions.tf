# Modules state the lowest versions they work with; the root configurations pin the exact provider
# (terraform/environments/*/versions.tf and their .terraform.lock.hcl): docs/infrastructure.md.
terraform {
  required_version = ">= 1.11.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0"
    }
  }
}
