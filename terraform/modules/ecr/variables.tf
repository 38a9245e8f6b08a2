variable "repositories" {
  description = "One repository per app, named like its folder under apps/ (apps/hello -> hello), mapped to the app's owner (app.yaml's owner)."
  type        = map(string)

  validation {
    condition     = alltrue([for r in keys(var.repositories) : can(regex("^[a-z0-9]+([._-][a-z0-9]+)*$", r))])
    error_message = "Repository names are app folder names: lower-case letters, digits and . _ - between them."
  }
}

variable "keep_tagged_images" {
  description = "How many tagged images each repository keeps (older ones expire): betcycle.yaml's registry.keepTagged, which `betcycle registry ensure` uses too."
  type        = number
  default     = 100
}

variable "untagged_expiry_days" {
  description = "Untagged images expire after this many days: betcycle.yaml's registry.untaggedExpireDays, which `betcycle registry ensure` uses too."
  type        = number
  default     = 14
}
