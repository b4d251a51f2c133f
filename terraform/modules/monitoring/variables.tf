variable "name" {
  description = "Name prefix for monitoring resources, e.g. \"ward-prod\"."
  type        = string
}

variable "logs_kms_key_arn" {
  description = "ARN of the logs KMS key (CloudTrail, trail bucket, log groups, SNS topics)."
  type        = string
}

variable "backup_kms_key_arn" {
  description = "ARN of the KMS key encrypting the AWS Backup vault."
  type        = string
}

variable "access_log_bucket" {
  description = "Name of the bucket receiving the trail bucket's server access logs."
  type        = string
}

variable "data_event_bucket_arns" {
  description = "ARNs of buckets whose object-level reads and writes CloudTrail records (PHI and evidence buckets)."
  type        = list(string)
}

variable "audit_archive_bucket_name" {
  description = "Name of the audit-checkpoint archive bucket; changes to its policy, lock or lifecycle raise an alarm."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the CloudTrail log group in days (at least 365)."
  type        = number
  default     = 400

  validation {
    condition     = var.log_retention_days >= 365
    error_message = "log_retention_days must be at least 365."
  }
}

variable "trail_retention_days" {
  description = "Days CloudTrail and Config files are kept in the trail bucket (six years by default)."
  type        = number
  default     = 2190
}

variable "alarm_emails" {
  description = "E-mail addresses subscribed to the alarm topic (each must confirm the subscription)."
  type        = list(string)
  default     = []
}

variable "break_glass_role_arns" {
  description = "Emergency-access roles; every AssumeRole of one raises an alarm."
  type        = list(string)
  default     = []
}

variable "enable_guardduty" {
  description = "Create the GuardDuty detector (disable if the account already has one)."
  type        = bool
  default     = true
}

variable "guardduty_runtime_monitoring" {
  description = "Enable GuardDuty Runtime Monitoring with the managed Fargate agent. The task execution role must then also be allowed to pull the GuardDuty agent image."
  type        = bool
  default     = false
}

variable "enable_security_hub" {
  description = "Enable Security Hub with the AWS Foundational Security Best Practices and NIST 800-53 r5 standards."
  type        = bool
  default     = true
}

variable "enable_config" {
  description = "Create the AWS Config recorder, delivery channel and HIPAA conformance pack (disable if the account already records Config)."
  type        = bool
  default     = true
}

variable "hipaa_conformance_pack_template_s3_uri" {
  description = "s3:// URI of the AWS sample template \"Operational Best Practices for HIPAA Security\" (uploaded by the operator, same region)."
  type        = string

  validation {
    condition     = startswith(var.hipaa_conformance_pack_template_s3_uri, "s3://")
    error_message = "hipaa_conformance_pack_template_s3_uri must start with s3://."
  }
}

variable "backup_daily_retention_days" {
  description = "Retention of daily continuous (point-in-time) backups in days; AWS allows at most 35."
  type        = number
  default     = 35

  validation {
    condition     = var.backup_daily_retention_days >= 7 && var.backup_daily_retention_days <= 35
    error_message = "backup_daily_retention_days must be between 7 and 35."
  }
}

variable "backup_monthly_retention_days" {
  description = "Retention of monthly recovery points in days."
  type        = number
  default     = 365
}

variable "backup_copy_destination_vault_arn" {
  description = "ARN of a backup vault in another region or account to copy daily recovery points to, or null."
  type        = string
  default     = null
}

variable "backup_vault_lock_changeable_for_days" {
  description = "Grace period (days, >= 3) during which the vault lock can still be removed; afterwards it is immutable (compliance mode)."
  type        = number
  default     = 3

  validation {
    condition     = var.backup_vault_lock_changeable_for_days >= 3
    error_message = "backup_vault_lock_changeable_for_days must be at least 3."
  }
}

variable "alb_arn_suffix" {
  description = "ARN suffix of the ALB (metric dimension)."
  type        = string
}

variable "target_group_arn_suffix" {
  description = "ARN suffix of the Ward target group (metric dimension)."
  type        = string
}

variable "ecs_cluster_name" {
  description = "Name of the ECS cluster (metric dimension)."
  type        = string
}

variable "ecs_service_name" {
  description = "Name of the ECS service (metric dimension)."
  type        = string
}

variable "db_instance_identifier" {
  description = "RDS instance identifier (metric dimension)."
  type        = string
}

variable "db_max_connections_alarm" {
  description = "Alarm when the database has more connections than this."
  type        = number
  default     = 400
}

variable "redis_replication_group_id" {
  description = "ElastiCache replication group id; member clusters are <id>-001, -002, ..."
  type        = string
}

variable "redis_num_cache_clusters" {
  description = "Number of nodes in the replication group (one alarm set per node)."
  type        = number
}

variable "tags" {
  description = "Tags applied to every monitoring resource."
  type        = map(string)
  default     = {}
}
