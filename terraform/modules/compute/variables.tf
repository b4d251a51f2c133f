variable "name" {
  description = "Name prefix for compute resources (cluster, roles, repository, secrets), e.g. \"ward-prod\"."
  type        = string
}

variable "vpc_id" {
  description = "ID of the VPC."
  type        = string
}

variable "app_subnet_ids" {
  description = "Private application subnet IDs the tasks run in (one per AZ)."
  type        = list(string)
}

variable "data_subnet_cidrs" {
  description = "CIDRs of the data subnets; tasks may reach PostgreSQL (5432) and Redis (6379) there and nowhere else in the VPC."
  type        = list(string)
}

variable "alb_security_group_id" {
  description = "Security group of the ALB; the only source allowed to reach the container port."
  type        = string
}

variable "target_group_arn" {
  description = "ALB target group the service registers its tasks in."
  type        = string
}

variable "container_port" {
  description = "Port `ward serve` listens on (must match WARD_BIND)."
  type        = number
  default     = 8080
}

variable "container_image" {
  description = "Full image reference to run, built from the repository's Dockerfile (`docker build -t ward .`: entrypoint `ward`, uid 10001, port 8080). Null means this module's ECR repository with image_tag."
  type        = string
  default     = null
}

variable "image_tag" {
  description = "Tag (immutable) of the Ward image in this module's ECR repository; the image is built from the repository's Dockerfile."
  type        = string
  default     = "latest-release"
}

variable "command" {
  description = "Container command; the image's entrypoint must be the ward binary."
  type        = list(string)
  default     = ["serve"]
}

variable "run_as_user" {
  description = "Numeric uid:gid the container runs as (never root); the Dockerfile's user `ward` is 10001:10001."
  type        = string
  default     = "10001:10001"

  validation {
    condition     = can(regex("^[1-9][0-9]*:[1-9][0-9]*$", var.run_as_user))
    error_message = "run_as_user must be a numeric non-root uid:gid, e.g. 10001:10001."
  }
}

variable "cpu" {
  description = "Fargate task CPU units (1024 = 1 vCPU)."
  type        = number
  default     = 1024
}

variable "memory" {
  description = "Fargate task memory in MiB."
  type        = number
  default     = 2048
}

variable "cpu_architecture" {
  description = "CPU architecture of the image: X86_64 or ARM64."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "nofile_limit" {
  description = "Open-file limit for the container; each WebSocket connection holds one descriptor."
  type        = number
  default     = 65535
}

variable "min_capacity" {
  description = "Minimum (and initial) number of tasks; keep >= 2 so one AZ failure leaves capacity."
  type        = number
  default     = 3
}

variable "max_capacity" {
  description = "Maximum number of tasks autoscaling may run."
  type        = number
  default     = 12
}

variable "cpu_target_percent" {
  description = "Target average CPU utilisation for autoscaling."
  type        = number
  default     = 60
}

variable "memory_target_percent" {
  description = "Target average memory utilisation for autoscaling."
  type        = number
  default     = 70
}

variable "environment" {
  description = "Non-secret WARD_* environment variables for the container (wired from other modules' outputs by the root)."
  type        = map(string)
}

variable "database_url" {
  description = "WARD_DATABASE_URL for the app's own database role (stored in Secrets Manager, injected as a secret)."
  type        = string
  sensitive   = true
}

variable "redis_url" {
  description = "WARD_REDIS_URL including the AUTH token (stored in Secrets Manager, injected as a secret)."
  type        = string
  sensitive   = true
}

variable "secrets_kms_key_arn" {
  description = "ARN of the KMS key that encrypts the app's Secrets Manager secrets."
  type        = string
}

variable "storage_kms_key_arn" {
  description = "ARN of the KMS key that encrypts the ECR repository."
  type        = string
}

variable "logs_kms_key_arn" {
  description = "ARN of the KMS key that encrypts the app log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the app log group in days (at least 365)."
  type        = number
  default     = 400

  validation {
    condition     = var.log_retention_days >= 365
    error_message = "log_retention_days must be at least 365."
  }
}

variable "read_write_bucket_arns" {
  description = "ARNs of the buckets the app reads and writes (attachments, exports)."
  type        = list(string)
}

variable "audit_archive_bucket_arn" {
  description = "ARN of the audit-checkpoint archive bucket (append and read only; never delete)."
  type        = string
}

variable "audit_archive_prefix" {
  description = "Key prefix the app writes checkpoints under in the archive bucket (WARD_AUDIT_S3_PREFIX; Ward writes <prefix>checkpoints/<size> and <prefix>checkpoint). Pass the audit-archive module's checkpoint_prefix output."
  type        = string
  default     = "ward-audit/"

  validation {
    condition     = can(regex("^([A-Za-z0-9._-]+/)+$", var.audit_archive_prefix))
    error_message = "audit_archive_prefix must be one or more path segments ending in \"/\", without a leading \"/\" (e.g. ward-audit/)."
  }
}

variable "tags" {
  description = "Tags applied to every compute resource."
  type        = map(string)
  default     = {}
}
