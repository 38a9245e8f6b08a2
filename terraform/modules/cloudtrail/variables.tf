variable "name" {
  description = "The trail's name; its log bucket is <name>-logs-<account id>."
  type        = string
}

variable "log_retention_days" {
  description = "How long the trail's log files are kept in S3."
  type        = number
  default     = 400
}
