# Staging: the staging EKS cluster (dev runs on it too, as the *-dev namespaces) and its CloudTrail trail,
# and, once for the whole AWS account, the ECR repositories, GitHub's OIDC provider, the account guard
# rails and the account-wide budget. What each module creates: docs/infrastructure.md.

locals {
  environment  = "staging"
  name         = "betcycle-${local.environment}"
  cluster_name = local.name
  # The names in backend.tf (Terraform can't read them from there).
  state_bucket = "example-org-betcycle-tfstate-staging"
  lock_table   = "betcycle-tflock-staging"
}

data "aws_availability_zones" "available" {
  state = "available"
}

# --- state: adopt what `betcycle state bootstrap --env staging` created ---------------------------------

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

# --- account-wide (this account's only copy) -------------------------------------------------------------

module "account" {
  source = "../../modules/account"
}

module "cloudtrail" {
  source = "../../modules/cloudtrail"

  name = "betcycle-staging"
}

module "budgets" {
  source = "../../modules/budgets"

  name              = "betcycle-account-total"
  monthly_limit_usd = var.account_budget_usd
  subscriber_emails = var.budget_emails
}

module "ecr" {
  source = "../../modules/ecr"

  repositories = var.apps
}

# --- the staging cluster ---------------------------------------------------------------------------------

module "network" {
  source = "../../modules/network"

  name               = local.name
  cluster_name       = local.cluster_name
  cidr_block         = "10.10.0.0/16"
  azs                = slice(data.aws_availability_zones.available.names, 0, 3)
  single_nat_gateway = true
}

module "eks" {
  source = "../../modules/eks"

  cluster_name         = local.cluster_name
  kubernetes_version   = var.kubernetes_version
  subnet_ids           = module.network.private_subnet_ids
  admin_principal_arns = var.cluster_admin_arns
  # Reachable from the office/VPN ranges only; prod's endpoint is private.
  endpoint_public_access = true
  public_access_cidrs    = var.eks_public_access_cidrs
  node_min_size          = 2
  node_max_size          = 6
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

data "aws_iam_policy_document" "ecr_push" {
  statement {
    sid       = "Login"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "PushAppImages"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:DescribeImages",
      "ecr:DescribeRepositories",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = values(module.ecr.repository_arns)
  }
}

module "github_oidc" {
  source = "../../modules/github-oidc"

  # GitHub's OIDC provider exists once per account: created here, looked up by prod.
  create_provider = true
  repository      = var.github_repository

  roles = {
    "betcycle-terraform-plan-staging" = {
      description = "terraform.yml: plan staging on pull requests (read-only, plus the state lock)"
      subjects    = ["pull_request"]
      policy_arns = ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
    }
    "betcycle-terraform-apply-staging" = {
      description = "terraform.yml: apply staging on a push to main (GitHub environment staging)"
      subjects    = ["environment:staging"]
      policy_arns = ["arn:aws:iam::aws:policy/AdministratorAccess"]
    }
    "betcycle-ecr-push" = {
      description = "cd.yml: push app images to ECR (GitHub environment staging)"
      subjects    = ["environment:staging"]
    }
  }

  inline_policies = {
    "betcycle-terraform-plan-staging" = data.aws_iam_policy_document.terraform_lock.json
    "betcycle-ecr-push"               = data.aws_iam_policy_document.ecr_push.json
  }
}
