output "bucket_name" {
  description = "Name of the audit-checkpoint archive bucket (WARD_S3_AUDIT_ARCHIVE_BUCKET)."
  value       = module.bucket.bucket_name
}

output "bucket_arn" {
  description = "ARN of the audit-checkpoint archive bucket."
  value       = module.bucket.bucket_arn
}

output "retention_days" {
  description = "Object Lock COMPLIANCE retention applied to every checkpoint, in days."
  value       = var.retention_days
}
