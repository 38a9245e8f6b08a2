"""AWS through boto3: what Terraform can't do (state bootstrap, ECR gates, cost, budgets, orphans, audits)."""
