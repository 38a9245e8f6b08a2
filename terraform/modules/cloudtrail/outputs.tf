output "trail_arn" {
  description = "The trail's ARN."
  value       = aws_cloudtrail.this.arn
}

output "log_bucket" {
  description = "Where the log files land."
  value       = aws_s3_bucket.logs.id
}
