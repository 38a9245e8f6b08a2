variable "github_repository" {
  description = "This repository on GitHub (owner/name): the only one whose workflows may assume the roles below."
  type        = string
}

variable "apps" {
  description = "One ECR repository per app folder under apps/, mapped to the app's owner (app.yaml). `betcycle registry ensure` creates a new app's repository at once; add the app here too (docs/infrastructure.md)."
  type        = map(string)
}

variable "kubernetes_version" {
  description = "EKS version of the staging cluster (the one dev shares): keep it equal to kubernetesVersion in environments/staging/environment.yaml and environments/dev/environment.yaml."
  type        = string
}

variable "cluster_admin_arns" {
  description = "IAM roles given cluster-admin on the staging cluster (the platform team's SSO role)."
  type        = list(string)
}

variable "eks_public_access_cidrs" {
  description = "Office or VPN ranges that may reach the staging API endpoint from outside the VPC."
  type        = list(string)
}

variable "account_budget_usd" {
  description = "Monthly limit of the account-wide safety-net budget, in USD."
  type        = number
}

variable "budget_emails" {
  description = "Who hears about the account-wide budget."
  type        = list(string)
}
