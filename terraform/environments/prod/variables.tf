variable "github_repository" {
  description = "This repository on GitHub (owner/name): the only one whose workflows may assume the roles below."
  type        = string
}

variable "kubernetes_version" {
  description = "EKS version of the prod cluster: keep it equal to kubernetesVersion in environments/prod/environment.yaml."
  type        = string
}

variable "cluster_admin_arns" {
  description = "IAM roles given cluster-admin on the prod cluster (the platform team's SSO role)."
  type        = list(string)
}
