output "repository_urls" {
  description = "Repository URL per app (what apps/<app>/app.yaml's image.repository holds)."
  value       = { for name, repo in aws_ecr_repository.this : name => repo.repository_url }
}

output "repository_arns" {
  description = "Repository ARN per app (the CD push role is limited to these)."
  value       = { for name, repo in aws_ecr_repository.this : name => repo.arn }
}
