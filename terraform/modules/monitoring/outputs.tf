output "alarm_topic_arn" {
  description = "ARN of the encrypted SNS topic receiving alarms, findings and backup failures."
  value       = aws_sns_topic.alarms.arn
}

output "cloudtrail_arn" {
  description = "ARN of the CloudTrail trail."
  value       = aws_cloudtrail.this.arn
}

output "cloudtrail_delivery_topic_arn" {
  description = "ARN of the SNS topic CloudTrail notifies on each log-file delivery (subscribe a SIEM queue here)."
  value       = aws_sns_topic.trail_delivery.arn
}

output "trail_bucket_name" {
  description = "Name of the bucket holding CloudTrail logs, digest files and Config history."
  value       = module.trail_bucket.bucket_name
}

output "cloudtrail_log_group_name" {
  description = "Name of the CloudWatch log group receiving CloudTrail events."
  value       = aws_cloudwatch_log_group.trail.name
}

output "backup_vault_arn" {
  description = "ARN of the locked AWS Backup vault."
  value       = aws_backup_vault.this.arn
}

output "guardduty_detector_id" {
  description = "ID of the GuardDuty detector, or null when enable_guardduty is false."
  value       = one(aws_guardduty_detector.this[*].id)
}
