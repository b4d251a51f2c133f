variable "name" {
  description = "Name prefix for every network resource, e.g. \"ward-prod\"."
  type        = string
}

variable "cidr_block" {
  description = "IPv4 CIDR of the VPC. It is split into /20-sized tiers (public, app, data) per AZ, so use a /16."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.cidr_block, 0)) && endswith(var.cidr_block, "/16")
    error_message = "cidr_block must be a valid IPv4 /16 CIDR."
  }
}

variable "azs" {
  description = "Exactly three Availability Zone names in the stack's region."
  type        = list(string)

  validation {
    condition     = length(var.azs) == 3 && length(distinct(var.azs)) == 3
    error_message = "azs must list exactly three distinct Availability Zones."
  }
}

variable "single_nat_gateway" {
  description = "Use one NAT gateway instead of one per AZ (cheaper, but egress then depends on one AZ). Keep false in production."
  type        = bool
  default     = false
}

variable "logs_kms_key_arn" {
  description = "ARN of the KMS key that encrypts the flow-log log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the VPC flow-log log group in days (at least 365)."
  type        = number
  default     = 400

  validation {
    condition     = var.log_retention_days >= 365
    error_message = "log_retention_days must be at least 365."
  }
}

variable "tags" {
  description = "Tags applied to every network resource."
  type        = map(string)
  default     = {}
}
