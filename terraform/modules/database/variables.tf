variable "name" {
  description = "Name prefix; the instance is called \"<name>-postgres\"."
  type        = string
}

variable "vpc_id" {
  description = "ID of the VPC."
  type        = string
}

variable "data_subnet_ids" {
  description = "Private data subnet IDs (one per AZ) for the DB subnet group."
  type        = list(string)
}

variable "app_security_group_id" {
  description = "Security group of the Ward tasks, the only source allowed to connect."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed database KMS key (storage and Performance Insights)."
  type        = string
}

variable "secrets_kms_key_arn" {
  description = "ARN of the KMS key encrypting the RDS-managed master user secret."
  type        = string
}

variable "logs_kms_key_arn" {
  description = "ARN of the KMS key encrypting the exported PostgreSQL log groups."
  type        = string
}

variable "engine_version" {
  description = "PostgreSQL major version, e.g. \"16\"; minor versions are upgraded automatically in the maintenance window, so pinning a minor would fight those upgrades."
  type        = string
  default     = "16"
}

variable "instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.r6g.large"
}

variable "allocated_storage_gb" {
  description = "Initial gp3 storage in GiB."
  type        = number
  default     = 100
}

variable "max_allocated_storage_gb" {
  description = "Upper bound for storage autoscaling in GiB."
  type        = number
  default     = 1000
}

variable "database_name" {
  description = "Name of the database Ward uses."
  type        = string
  default     = "ward"
}

variable "master_username" {
  description = "Master (administrative) user name; its password lives only in the RDS-managed secret."
  type        = string
  default     = "ward_admin"
}

variable "app_username" {
  description = "Database role Ward connects as (created once by the bootstrap step in the README; no superuser rights)."
  type        = string
  default     = "ward_app"
}

variable "backup_retention_days" {
  description = "Automated backup retention (point-in-time recovery window) in days, 7-35."
  type        = number
  default     = 35

  validation {
    condition     = var.backup_retention_days >= 7 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 7 and 35."
  }
}

variable "performance_insights_retention_days" {
  description = "Performance Insights retention in days (7 is the free tier; or a multiple of 31, up to 731)."
  type        = number
  default     = 7
}

variable "log_min_duration_statement_ms" {
  description = "Statements slower than this many milliseconds are logged (statement text only, never bind parameters)."
  type        = number
  default     = 1000
}

variable "log_retention_days" {
  description = "Retention of the exported PostgreSQL log groups in days (at least 365)."
  type        = number
  default     = 400

  validation {
    condition     = var.log_retention_days >= 365
    error_message = "log_retention_days must be at least 365."
  }
}

variable "tags" {
  description = "Tags applied to every database resource."
  type        = map(string)
  default     = {}
}
