output "ebs_encryption_by_default" {
  description = "Whether new EBS volumes are encrypted by default (always true here)."
  value       = aws_ebs_encryption_by_default.this.enabled
}
