output "cluster_name" {
  description = "aws eks update-kubeconfig --region eu-west-1 --name <this>"
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "The staging cluster's API endpoint."
  value       = module.eks.cluster_endpoint
}

output "ecr_repository_urls" {
  description = "Repository URL per app (image.repository in apps/<app>/app.yaml)."
  value       = module.ecr.repository_urls
}

output "github_role_arns" {
  description = "The roles' ARNs: the Actions variables AWS_TERRAFORM_PLAN_ROLE_ARN_STAGING, AWS_TERRAFORM_APPLY_ROLE_ARN_STAGING and AWS_ECR_PUSH_ROLE_ARN."
  value       = module.github_oidc.role_arns
}

output "nat_public_ips" {
  description = "The staging cluster's egress addresses."
  value       = module.network.nat_public_ips
}
