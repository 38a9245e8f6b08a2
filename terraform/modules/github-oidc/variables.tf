variable "create_provider" {
  description = "Create GitHub's OIDC provider (once per AWS account: in staging); otherwise look up the existing one."
  type        = bool
}

variable "repository" {
  description = "The GitHub repository allowed to assume the roles, as owner/name."
  type        = string
}

variable "roles" {
  description = <<-EOT
    IAM roles GitHub Actions jobs assume with their OIDC token. `subjects` are the token subjects after
    "repo:<owner>/<name>:" (e.g. "environment:staging", "pull_request"); `policy_arns` are managed policies
    to attach.
  EOT
  type = map(object({
    description = string
    subjects    = list(string)
    policy_arns = optional(list(string), [])
  }))

  validation {
    condition     = alltrue([for r in values(var.roles) : length(r.subjects) > 0 && !contains(r.subjects, "*")])
    error_message = "Each role names the job subjects that may assume it; a wildcard subject would let any branch in."
  }
}

variable "inline_policies" {
  description = "Inline policy documents (JSON) per role name, for permissions no managed policy grants as narrowly."
  type        = map(string)
  default     = {}
}

variable "max_session_duration" {
  description = "Longest session, in seconds (a Terraform apply of a new cluster takes ~20 minutes)."
  type        = number
  default     = 3600
}
