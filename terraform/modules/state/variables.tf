variable "bucket" {
  description = "The state bucket: the `bucket` of the environment's backend.tf."
  type        = string
}

variable "lock_table" {
  description = "The DynamoDB lock table: the `dynamodb_table` of the environment's backend.tf."
  type        = string
}

variable "noncurrent_version_days" {
  description = "How long superseded state versions are kept (the way back from a bad apply)."
  type        = number
  default     = 90
}
