output "vpc_id" {
  description = "The VPC's ID."
  value       = aws_vpc.this.id
}

output "public_subnet_ids" {
  description = "Public subnets (internet-facing load balancers)."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Private subnets (nodes, the EKS control plane's interfaces, internal load balancers)."
  value       = aws_subnet.private[*].id
}

output "nat_public_ips" {
  description = "The NAT gateways' addresses: what third parties see as the cluster's source IP."
  value       = aws_eip.nat[*].public_ip
}
