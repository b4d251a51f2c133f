output "bucket_name" {
  description = "Name of the audit-checkpoint archive bucket (WARD_AUDIT_S3_BUCKET)."
  value       = module.bucket.bucket_name
}

output "bucket_arn" {
  description = "ARN of the audit-checkpoint archive bucket."
  value       = module.bucket.bucket_arn
}

output "checkpoint_prefix" {
  description = "Key prefix of the checkpoints (WARD_AUDIT_S3_PREFIX); the writer's permissions are scoped to it."
  value       = var.checkpoint_prefix
}

output "retention_days" {
  description = "Object Lock COMPLIANCE retention applied to every checkpoint, in days."
  value       = var.retention_days
}
