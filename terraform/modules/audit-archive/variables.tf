variable "name" {
  description = "Name prefix for the archive bucket; account id and region are appended."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the KMS key for SSE-KMS on the archive (the storage key; a key in the archive account when deployed cross-account)."
  type        = string
}

variable "access_log_bucket" {
  description = "Name of the bucket receiving this bucket's server access logs."
  type        = string
}

variable "writer_role_arn" {
  description = "ARN of the role allowed to append checkpoints (the Ward ECS task role). It cannot delete or overwrite locked versions."
  type        = string
}

variable "reader_arns" {
  description = "Additional principals (auditors) allowed to read checkpoints."
  type        = list(string)
  default     = []
}

variable "checkpoint_prefix" {
  description = "Key prefix under which Ward writes checkpoints (WARD_AUDIT_S3_PREFIX). Ward appends `checkpoints/<20-digit size>` and `checkpoint`, so the default gives ward-audit/checkpoints/... and ward-audit/checkpoint."
  type        = string
  default     = "ward-audit/"

  validation {
    condition     = can(regex("^([A-Za-z0-9._-]+/)+$", var.checkpoint_prefix))
    error_message = "checkpoint_prefix must be one or more path segments ending in \"/\", without a leading \"/\" (e.g. ward-audit/)."
  }
}

variable "retention_days" {
  description = "Object Lock COMPLIANCE retention of every checkpoint version, in days. It cannot be shortened once written. HIPAA documentation retention is six years (2190 days)."
  type        = number
  default     = 2190

  validation {
    condition     = var.retention_days >= 365
    error_message = "retention_days must be at least 365."
  }
}

variable "tags" {
  description = "Tags applied to the archive bucket."
  type        = map(string)
  default     = {}
}
