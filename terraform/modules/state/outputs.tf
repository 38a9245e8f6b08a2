output "bucket_arn" {
  description = "The state bucket's ARN (the Terraform roles' state permissions are limited to it)."
  value       = aws_s3_bucket.this.arn
}

output "lock_table_arn" {
  description = "The lock table's ARN."
  value       = aws_dynamodb_table.lock.arn
}
