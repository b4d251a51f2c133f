variable "name" {
  description = "Name prefix for the edge resources, e.g. \"ward-prod\"."
  type        = string
}

variable "vpc_id" {
  description = "ID of the VPC."
  type        = string
}

variable "vpc_cidr_block" {
  description = "CIDR of the VPC; the ALB may only send traffic to the container port inside it."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnet IDs (one per AZ) for the internet-facing ALB."
  type        = list(string)
}

variable "certificate_arn" {
  description = "ARN of the ACM certificate for Ward's public hostname (issued and DNS-validated outside this module)."
  type        = string
}

variable "ssl_policy" {
  description = "ALB TLS security policy. The default allows only TLS 1.3 and TLS 1.2 with forward-secret AEAD ciphers."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"

  validation {
    condition     = can(regex("TLS13-1-2|TLS-1-2", var.ssl_policy))
    error_message = "ssl_policy must be a TLS 1.2+ policy (ELBSecurityPolicy-TLS13-1-2-* or ELBSecurityPolicy-TLS-1-2-*)."
  }
}

variable "idle_timeout_seconds" {
  description = "ALB idle timeout. WebSocket connections idle longer than this are closed; Stream SDKs send a health event about every 30 s, so a few minutes is ample."
  type        = number
  default     = 300

  validation {
    condition     = var.idle_timeout_seconds >= 60 && var.idle_timeout_seconds <= 4000
    error_message = "idle_timeout_seconds must be between 60 and 4000."
  }
}

variable "container_port" {
  description = "Port Ward listens on inside the task (WARD_BIND)."
  type        = number
  default     = 8080
}

variable "health_check_path" {
  description = "HTTP path the ALB probes on each task."
  type        = string
  default     = "/healthz"
}

variable "deregistration_delay_seconds" {
  description = "Time the ALB keeps draining a task being replaced, so WebSocket clients can reconnect elsewhere."
  type        = number
  default     = 60
}

variable "allowed_ingress_cidrs" {
  description = "Client CIDRs allowed to reach the ALB on 443. Defaults to the internet; narrow it for private deployments."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "access_log_bucket" {
  description = "Name of the SSE-S3 bucket receiving ALB access logs (prefix alb/)."
  type        = string
}

variable "waf_rate_limit_per_5min" {
  description = "Requests per 5 minutes from one IP before WAF blocks it."
  type        = number
  default     = 2000

  validation {
    condition     = var.waf_rate_limit_per_5min >= 100
    error_message = "waf_rate_limit_per_5min must be at least 100 (the WAF minimum)."
  }
}

variable "logs_kms_key_arn" {
  description = "ARN of the KMS key encrypting the WAF log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the WAF log group in days (at least 365)."
  type        = number
  default     = 400

  validation {
    condition     = var.log_retention_days >= 365
    error_message = "log_retention_days must be at least 365."
  }
}

variable "deletion_protection" {
  description = "Protect the ALB from deletion."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags applied to every edge resource."
  type        = map(string)
  default     = {}
}
