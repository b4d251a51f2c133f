output "database_key_arn" {
  description = "ARN of the KMS key for RDS storage, Performance Insights and ElastiCache at rest."
  value       = aws_kms_key.symmetric["database"].arn
}

output "storage_key_arn" {
  description = "ARN of the KMS key for the S3 buckets (SSE-KMS)."
  value       = aws_kms_key.symmetric["storage"].arn
}

output "field_key_arn" {
  description = "ARN of Ward's root key (WARD_KMS_KEY_ID): wraps the field-encryption KEKs and the audit-log signing key."
  value       = aws_kms_key.symmetric["field"].arn
}

output "logs_key_arn" {
  description = "ARN of the KMS key for CloudWatch Logs, CloudTrail, Config delivery and SNS topics."
  value       = aws_kms_key.symmetric["logs"].arn
}

output "secrets_key_arn" {
  description = "ARN of the KMS key for Secrets Manager secrets."
  value       = aws_kms_key.symmetric["secrets"].arn
}

output "backup_key_arn" {
  description = "ARN of the KMS key for the AWS Backup vault."
  value       = aws_kms_key.symmetric["backup"].arn
}

output "key_arns" {
  description = "Map of purpose => key ARN for every key in this module (for alarms and documentation)."
  value       = { for k, v in aws_kms_key.symmetric : k => v.arn }
}
