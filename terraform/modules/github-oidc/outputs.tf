output "provider_arn" {
  description = "GitHub's OIDC provider in this account."
  value       = local.provider_arn
}

output "role_arns" {
  description = "ARN per role name: the values of the Actions variables in docs/infrastructure.md."
  value       = { for name, role in aws_iam_role.this : name => role.arn }
}
