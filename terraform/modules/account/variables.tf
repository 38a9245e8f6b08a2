variable "ebs_default_kms_key_arn" {
  description = "KMS key new EBS volumes are encrypted with by default; null keeps the AWS-managed aws/ebs key."
  type        = string
  default     = null
}
