variable "name" {
  description = "Prefix of every resource name, e.g. betcycle-staging."
  type        = string
}

variable "cidr_block" {
  description = "The VPC's IPv4 range."
  type        = string
}

variable "azs" {
  description = "Availability zones, one public and one private subnet in each (at least two: EKS needs two)."
  type        = list(string)

  validation {
    condition     = length(var.azs) >= 2
    error_message = "EKS needs subnets in at least two availability zones."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for the whole VPC (cheaper; staging) instead of one per zone (prod)."
  type        = bool
  default     = false
}

variable "cluster_name" {
  description = "EKS cluster that uses the subnets: tagged so its load balancer controller finds them."
  type        = string
}

variable "flow_log_retention_days" {
  description = "How long the VPC flow logs are kept in CloudWatch Logs."
  type        = number
  default     = 365
}
