variable "name" {
  description = "Name prefix; the replication group is \"<name>-redis\" (at most 40 characters)."
  type        = string
}

variable "vpc_id" {
  description = "ID of the VPC."
  type        = string
}

variable "data_subnet_ids" {
  description = "Private data subnet IDs (one per AZ) for the cache subnet group."
  type        = list(string)
}

variable "app_security_group_id" {
  description = "Security group of the Ward tasks, the only source allowed to connect."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed KMS key for encryption at rest (the database key)."
  type        = string
}

variable "logs_kms_key_arn" {
  description = "ARN of the KMS key encrypting the Redis slow-log and engine-log groups."
  type        = string
}

variable "engine_version" {
  description = "Redis engine version."
  type        = string
  default     = "7.1"
}

variable "parameter_group_name" {
  description = "ElastiCache parameter group (must match the engine major version)."
  type        = string
  default     = "default.redis7"
}

variable "node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.r7g.large"
}

variable "num_cache_clusters" {
  description = "Number of nodes (one primary plus replicas), spread over the AZs; at least 2 for automatic failover."
  type        = number
  default     = 3

  validation {
    condition     = var.num_cache_clusters >= 2
    error_message = "num_cache_clusters must be at least 2 for Multi-AZ automatic failover."
  }
}

variable "snapshot_retention_days" {
  description = "Days of automatic snapshots to keep (Redis here holds only transient fan-out state)."
  type        = number
  default     = 7
}

variable "log_retention_days" {
  description = "Retention of the Redis log groups in days (at least 365)."
  type        = number
  default     = 400

  validation {
    condition     = var.log_retention_days >= 365
    error_message = "log_retention_days must be at least 365."
  }
}

variable "tags" {
  description = "Tags applied to every cache resource."
  type        = map(string)
  default     = {}
}
