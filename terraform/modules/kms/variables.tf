variable "name" {
  description = "Name prefix for key aliases, e.g. \"ward-prod\" gives alias/ward-prod/database."
  type        = string
}

variable "key_admin_arns" {
  description = "IAM principals (roles) that administer the keys: change policies, rotation, tags, schedule deletion. They are deliberately NOT allowed to encrypt or decrypt."
  type        = list(string)

  validation {
    condition     = length(var.key_admin_arns) > 0
    error_message = "At least one key administrator is required, otherwise the keys become unmanageable."
  }
}

variable "app_task_role_arn" {
  description = "ARN of the Ward ECS task role: the only principal that may use the root key (field-encryption KEKs and the wrapped audit-log signing key) for Encrypt/Decrypt."
  type        = string
}

variable "app_execution_role_arn" {
  description = "ARN of the ECS task execution role: may decrypt Secrets Manager secrets (via Secrets Manager only) to inject them into the container."
  type        = string
}

variable "break_glass_arns" {
  description = "Emergency-access (break-glass) roles that may decrypt with the field and database keys. Every use is logged by CloudTrail and raises an alarm (monitoring module)."
  type        = list(string)
  default     = []
}

variable "deletion_window_in_days" {
  description = "Waiting period before a key scheduled for deletion is destroyed (7-30 days)."
  type        = number
  default     = 30

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30
    error_message = "deletion_window_in_days must be between 7 and 30."
  }
}

variable "tags" {
  description = "Tags applied to every key."
  type        = map(string)
  default     = {}
}
