variable "name" {
  description = "Name prefix for the buckets; the account id and region are appended to make names globally unique."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the storage KMS key used for SSE-KMS on the attachments and exports buckets."
  type        = string
}

variable "noncurrent_version_expiration_days" {
  description = "Days a replaced or deleted attachment version is kept before it expires (versioning protects against accidental overwrite)."
  type        = number
  default     = 35
}

variable "export_expiration_days" {
  description = "Days an export bundle stays downloadable before S3 expires it."
  type        = number
  default     = 14

  validation {
    condition     = var.export_expiration_days >= 1 && var.export_expiration_days <= 90
    error_message = "export_expiration_days must be between 1 and 90."
  }
}

variable "access_log_retention_days" {
  description = "Days S3 and ALB access logs are kept (HIPAA documentation retention is six years, 2190 days)."
  type        = number
  default     = 2190

  validation {
    condition     = var.access_log_retention_days >= 365
    error_message = "access_log_retention_days must be at least 365."
  }
}

variable "tags" {
  description = "Tags applied to every bucket."
  type        = map(string)
  default     = {}
}
