variable "bucket_name" {
  description = "Globally unique name of the bucket."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed KMS key used for SSE-KMS default encryption."
  type        = string
}

variable "access_log_bucket" {
  description = "Name of the bucket that receives this bucket's server access logs (it must not be this bucket)."
  type        = string
}

variable "policy_documents" {
  description = "Extra IAM policy documents (JSON) merged into the bucket policy, e.g. service or application grants. The TLS-only deny statements are always added."
  type        = list(string)
  default     = []
}

variable "object_lock_mode" {
  description = "S3 Object Lock default retention mode (COMPLIANCE or GOVERNANCE), or null for no Object Lock. Object Lock can only be switched on when the bucket is created."
  type        = string
  default     = null

  validation {
    condition     = var.object_lock_mode == null || contains(["COMPLIANCE", "GOVERNANCE"], coalesce(var.object_lock_mode, "none"))
    error_message = "object_lock_mode must be null, COMPLIANCE or GOVERNANCE."
  }
}

variable "object_lock_days" {
  description = "Default Object Lock retention in days (used only when object_lock_mode is set)."
  type        = number
  default     = 2190
}

variable "expiration_days" {
  description = "Days after which current object versions expire (become noncurrent), or null to keep them. Not allowed to shorten Object Lock retention."
  type        = number
  default     = null
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which noncurrent object versions expire, or null to keep them (required for Object Lock buckets and evidence)."
  type        = number
  default     = null
}

variable "backup" {
  description = "Whether AWS Backup should protect this bucket (sets the ward:backup tag the backup selection matches)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags applied to the bucket."
  type        = map(string)
  default     = {}
}
