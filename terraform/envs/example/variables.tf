variable "region" {
  description = "AWS region of this dedicated stack, e.g. us-east-1. Choose a region where every service used is HIPAA-eligible."
  type        = string
}

variable "account_id" {
  description = "AWS account ID this stack may be applied to (guards against applying into the wrong account)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be a 12-digit AWS account ID."
  }
}

variable "name" {
  description = "Short product/customer name used as the first part of every resource name."
  type        = string
  default     = "ward"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,9}$", var.name))
    error_message = "name must be 2-10 lowercase letters, digits or hyphens, starting with a letter (bucket names must stay under 63 characters)."
  }
}

variable "environment" {
  description = "Environment name (e.g. prod, staging); resources are named <name>-<environment>."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,7}$", var.environment))
    error_message = "environment must be 2-8 lowercase letters or digits, starting with a letter."
  }
}

variable "azs" {
  description = "Exactly three Availability Zone names in the region, listed explicitly so the stack never moves when AWS adds a zone."
  type        = list(string)
}

variable "vpc_cidr" {
  description = "IPv4 /16 CIDR of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "single_nat_gateway" {
  description = "One NAT gateway instead of one per AZ (non-production only)."
  type        = bool
  default     = false
}

variable "certificate_arn" {
  description = "ARN of the ACM certificate (same region) for Ward's public hostname."
  type        = string
}

variable "allowed_ingress_cidrs" {
  description = "Client CIDRs allowed to reach the HTTPS listener."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "waf_rate_limit_per_5min" {
  description = "WAF per-IP request limit per 5 minutes."
  type        = number
  default     = 2000
}

variable "key_admin_arns" {
  description = "IAM roles that administer the KMS keys (and run Terraform). They cannot use the keys."
  type        = list(string)
}

variable "auditor_arns" {
  description = "IAM roles of auditors: read the audit-checkpoint archive (they verify checkpoints offline against the pinned verifier key from `ward audit verifier-key`; no KMS access is needed)."
  type        = list(string)
  default     = []
}

variable "break_glass_role_arns" {
  description = "Emergency-access roles: may decrypt with the field key; every use raises an alarm."
  type        = list(string)
  default     = []
}

variable "audit_archive_prefix" {
  description = "Key prefix of Ward's signed audit checkpoints in the archive bucket (WARD_AUDIT_S3_PREFIX). Ward appends `checkpoints/<20-digit size>` and `checkpoint`, so the default gives ward-audit/checkpoints/00000000000000000042 and ward-audit/checkpoint. Do not change it on a running stack: at startup Ward compares the database only with the latest checkpoint under this prefix, so a new prefix starts with no published history to check against."
  type        = string
  default     = "ward-audit/"

  validation {
    condition     = can(regex("^([A-Za-z0-9._-]+/)+$", var.audit_archive_prefix))
    error_message = "audit_archive_prefix must be one or more path segments ending in \"/\", without a leading \"/\" (e.g. ward-audit/)."
  }
}

variable "audit_archive_retention_days" {
  description = "Object Lock COMPLIANCE retention of archived audit checkpoints, in days."
  type        = number
  default     = 2190
}

variable "container_port" {
  description = "Port `ward serve` listens on (WARD_BIND)."
  type        = number
  default     = 8080
}

variable "image_tag" {
  description = "Tag of the Ward image in the stack's ECR repository."
  type        = string
}

variable "task_cpu" {
  description = "Fargate CPU units per task."
  type        = number
  default     = 1024
}

variable "task_memory" {
  description = "Fargate memory (MiB) per task."
  type        = number
  default     = 2048
}

variable "min_tasks" {
  description = "Minimum number of Ward tasks."
  type        = number
  default     = 3
}

variable "max_tasks" {
  description = "Maximum number of Ward tasks."
  type        = number
  default     = 12
}

variable "db_instance_class" {
  description = "RDS PostgreSQL instance class."
  type        = string
  default     = "db.r6g.large"
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.r7g.large"
}

variable "redis_num_cache_clusters" {
  description = "Number of Redis nodes (primary plus replicas)."
  type        = number
  default     = 3
}

variable "log_retention_days" {
  description = "Retention of every CloudWatch log group in days (at least 365)."
  type        = number
  default     = 400
}

variable "alarm_emails" {
  description = "E-mail addresses that receive alarms and security findings."
  type        = list(string)
  default     = []
}

variable "hipaa_conformance_pack_template_s3_uri" {
  description = "s3:// URI of the uploaded AWS Config \"Operational Best Practices for HIPAA Security\" template."
  type        = string
}

variable "backup_copy_destination_vault_arn" {
  description = "Backup vault in a second region/account that receives copies of daily recovery points, or null."
  type        = string
  default     = null
}
