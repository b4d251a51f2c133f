output "attachments_bucket_name" {
  description = "Name of the attachments bucket (WARD_S3_ATTACHMENTS_BUCKET)."
  value       = module.attachments.bucket_name
}

output "attachments_bucket_arn" {
  description = "ARN of the attachments bucket."
  value       = module.attachments.bucket_arn
}

output "exports_bucket_name" {
  description = "Name of the exports bucket (WARD_S3_EXPORTS_BUCKET)."
  value       = module.exports.bucket_name
}

output "exports_bucket_arn" {
  description = "ARN of the exports bucket."
  value       = module.exports.bucket_arn
}

output "log_bucket_name" {
  description = "Name of the SSE-S3 bucket receiving S3 server access logs (prefix s3/) and ALB access logs (prefix alb/)."
  value       = aws_s3_bucket.logs.id
}

output "log_bucket_arn" {
  description = "ARN of the access-log bucket."
  value       = aws_s3_bucket.logs.arn
}
