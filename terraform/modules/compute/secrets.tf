# Secrets injected into the Ward container by the ECS agent (never in the task
# definition, never in the image). Encrypted with the secrets KMS key; only the
# execution role may read them (IAM policy above + key policy in the kms module).
#
# Values generated here (API key and secret) and passed in (database and Redis
# URLs) are also stored in Terraform state: keep the state in an encrypted,
# access-restricted backend (see README).

locals {
  # Container environment variable => secret name suffix.
  secret_env = {
    WARD_API_KEY      = "api-key"
    WARD_API_SECRET   = "api-secret"
    WARD_DATABASE_URL = "database-url"
    WARD_REDIS_URL    = "redis-url"
  }
}

resource "random_password" "api_key" {
  length  = 24
  special = false
  upper   = false
}

resource "random_password" "api_secret" {
  length  = 64
  special = false
}

resource "aws_secretsmanager_secret" "app" {
  #checkov:skip=CKV2_AWS_57:No rotation Lambda: rotating the API secret or Redis AUTH token needs a coordinated client/app roll-out (README runbook); the RDS master secret is rotated by RDS itself.
  for_each = toset(values(local.secret_env))

  name                    = "${var.name}/${each.key}"
  description             = "Ward ${var.name}: ${each.key}"
  kms_key_id              = var.secrets_kms_key_arn
  recovery_window_in_days = 30
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "app" {
  for_each = toset(values(local.secret_env))

  secret_id = aws_secretsmanager_secret.app[each.key].id
  secret_string = lookup({
    "api-key"      = random_password.api_key.result
    "api-secret"   = random_password.api_secret.result
    "database-url" = var.database_url
    "redis-url"    = var.redis_url
  }, each.key)
}
