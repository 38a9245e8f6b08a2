output "cluster_name" {
  description = "aws eks update-kubeconfig --region eu-west-1 --name <this> (from inside the VPC)"
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "The prod cluster's private API endpoint."
  value       = module.eks.cluster_endpoint
}

output "github_role_arns" {
  description = "The prod Terraform roles' ARNs."
  value       = module.github_oidc.role_arns
}

output "nat_public_ips" {
  description = "The prod cluster's egress addresses."
  value       = module.network.nat_public_ips
}
