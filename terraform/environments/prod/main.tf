# Prod: the prod EKS cluster, its network, its own CloudTrail trail and its GitHub Actions roles. The other
# account-wide resources (ECR repositories, GitHub's OIDC provider, guard rails, the account budget) are
# staging's, so they exist once. The API endpoint is private: the cluster is reached from inside the VPC
# (Argo CD runs in it).

locals {
  environment  = "prod"
  name         = "betcycle-${local.environment}"
  cluster_name = local.name
  # The names in backend.tf (Terraform can't read them from there).
  state_bucket = "example-org-betcycle-tfstate-prod"
  lock_table   = "betcycle-tflock-prod"
}

data "aws_availability_zones" "available" {
  state = "available"
}

# --- state: adopt what `betcycle state bootstrap --env prod` created ------------------------------------

module "state" {
  source = "../../modules/state"

  bucket     = local.state_bucket
  lock_table = local.lock_table
}

# Import blocks are no-ops once the resources are in the state.
import {
  to = module.state.aws_s3_bucket.this
  id = local.state_bucket
}

import {
  to = module.state.aws_s3_bucket_versioning.this
  id = local.state_bucket
}

import {
  to = module.state.aws_s3_bucket_server_side_encryption_configuration.this
  id = local.state_bucket
}

import {
  to = module.state.aws_s3_bucket_public_access_block.this
  id = local.state_bucket
}

import {
  to = module.state.aws_dynamodb_table.lock
  id = local.lock_table
}

# --- audit -----------------------------------------------------------------------------------------------

# Prod keeps a trail of its own (policy TF009: every root configuration has one), so prod's audit log
# doesn't depend on staging's configuration and stays when prod moves to an account of its own. In one
# shared account it is a second copy of the management events (about $2 per 100,000 events).
module "cloudtrail" {
  source = "../../modules/cloudtrail"

  name = "betcycle-prod"
}

# --- the prod cluster ------------------------------------------------------------------------------------

module "network" {
  source = "../../modules/network"

  name         = local.name
  cluster_name = local.cluster_name
  cidr_block   = "10.20.0.0/16"
  azs          = slice(data.aws_availability_zones.available.names, 0, 3)
  # One NAT gateway per zone: losing a zone doesn't cut the others off.
  single_nat_gateway = false
}

module "eks" {
  source = "../../modules/eks"

  cluster_name         = local.cluster_name
  kubernetes_version   = var.kubernetes_version
  subnet_ids           = module.network.private_subnet_ids
  admin_principal_arns = var.cluster_admin_arns
  # Private API endpoint only (the Terraform policies require it in prod).
  endpoint_public_access = false
  node_min_size          = 3
  node_max_size          = 12
  node_desired_size      = 3
}

# --- GitHub Actions roles ----------------------------------------------------------------------------------

data "aws_iam_policy_document" "terraform_lock" {
  statement {
    sid       = "StateLock"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:DescribeTable"]
    resources = [module.state.lock_table_arn]
  }
}

module "github_oidc" {
  source = "../../modules/github-oidc"

  # Created by staging's configuration (once per account).
  create_provider = false
  repository      = var.github_repository

  roles = {
    "betcycle-terraform-plan-prod" = {
      description = "terraform.yml: plan prod on pull requests (read-only, plus the state lock)"
      subjects    = ["pull_request"]
      policy_arns = ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
    }
    "betcycle-terraform-apply-prod" = {
      description = "terraform.yml: apply prod on a push to main, after the production environment's reviewers approved"
      subjects    = ["environment:production"]
      policy_arns = ["arn:aws:iam::aws:policy/AdministratorAccess"]
    }
  }

  inline_policies = {
    "betcycle-terraform-plan-prod" = data.aws_iam_policy_document.terraform_lock.json
  }
}
