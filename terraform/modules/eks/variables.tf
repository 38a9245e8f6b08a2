variable "cluster_name" {
  description = "The EKS cluster's name (betcycle-<environment>)."
  type        = string
}

variable "kubernetes_version" {
  description = "Control-plane version; keep it equal to kubernetesVersion in environments/<env>/environment.yaml."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the control plane's network interfaces and the nodes."
  type        = list(string)
}

variable "endpoint_public_access" {
  description = "Whether the Kubernetes API is reachable from the internet (then only from public_access_cidrs). Must be false in prod."
  type        = bool
  default     = false
}

variable "public_access_cidrs" {
  description = "Where the public API endpoint accepts connections from, when endpoint_public_access is true. Never 0.0.0.0/0."
  type        = list(string)
  default     = []

  validation {
    condition     = !contains(var.public_access_cidrs, "0.0.0.0/0")
    error_message = "The Kubernetes API must not be open to the whole internet: list the office or VPN ranges."
  }
}

variable "admin_principal_arns" {
  description = "IAM roles or users given cluster-admin through EKS access entries (e.g. the platform team's SSO role)."
  type        = list(string)
  default     = []
}

variable "node_instance_types" {
  description = "Instance types of the managed node group."
  type        = list(string)
  default     = ["m6i.large"]
}

variable "node_min_size" {
  description = "Smallest number of nodes."
  type        = number
  default     = 2
}

variable "node_max_size" {
  description = "Largest number of nodes."
  type        = number
  default     = 6
}

variable "node_desired_size" {
  description = "Nodes at creation (the autoscaler moves it later; Terraform ignores the drift)."
  type        = number
  default     = 2
}

variable "node_disk_size_gib" {
  description = "Root volume of each node (gp3, encrypted)."
  type        = number
  default     = 50
}

variable "log_retention_days" {
  description = "How long the control-plane logs are kept."
  type        = number
  default     = 90
}
