# Values for this environment. Placeholders like the rest of the repository (account 123456789012,
# example-org): replace them before the first apply (docs/infrastructure.md, "Bootstrap order").
github_repository       = "example-org/platform"
apps                    = { hello = "team-platform" }
kubernetes_version      = "1.31"
cluster_admin_arns      = ["arn:aws:iam::123456789012:role/platform-admin"]
eks_public_access_cidrs = ["203.0.113.0/24"]
account_budget_usd      = 3000
budget_emails           = ["platform@example.com"]
