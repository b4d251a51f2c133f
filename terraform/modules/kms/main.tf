# Customer-managed KMS keys, one per purpose, so that a grant, a policy mistake or
# a compromise is confined to one kind of data. Key policies (policies.tf)
# separate duties:
#   - administrators manage keys but cannot encrypt or decrypt;
#   - the Ward task role alone uses the field-encryption root key, which wraps
#     Ward's field-encryption KEKs and its audit-checkpoint signing key (an
#     Ed25519 seed Ward generates and stores in the database, wrapped; there is
#     no asymmetric KMS key: C2SP signed notes need Ed25519);
#   - AWS services use the data keys only through the service (kms:ViaService)
#     or as their service principal, scoped by encryption context.
# The account root is NOT given kms:*, so IAM policies alone cannot grant use of
# these keys: every use is named here.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  root_arn   = "arn:${local.partition}:iam::${local.account_id}:root"

  symmetric_keys = {
    database = {
      description = "Ward ${var.name}: RDS PostgreSQL storage, Performance Insights and ElastiCache at rest"
      policy      = data.aws_iam_policy_document.database.json
    }
    storage = {
      description = "Ward ${var.name}: S3 buckets (attachments, exports, audit-checkpoint archive) and ECR images"
      policy      = data.aws_iam_policy_document.storage.json
    }
    field = {
      description = "Ward ${var.name}: root key wrapping Ward's field-encryption key-encryption keys and audit-log signing key"
      policy      = data.aws_iam_policy_document.field.json
    }
    logs = {
      description = "Ward ${var.name}: CloudWatch Logs, CloudTrail, Config delivery and SNS alarm topics"
      policy      = data.aws_iam_policy_document.logs.json
    }
    secrets = {
      description = "Ward ${var.name}: Secrets Manager secrets (API credentials, database and Redis URLs)"
      policy      = data.aws_iam_policy_document.secrets.json
    }
    backup = {
      description = "Ward ${var.name}: AWS Backup vault"
      policy      = data.aws_iam_policy_document.backup.json
    }
  }
}

resource "aws_kms_key" "symmetric" {
  for_each = local.symmetric_keys

  description              = each.value.description
  key_usage                = "ENCRYPT_DECRYPT"
  customer_master_key_spec = "SYMMETRIC_DEFAULT"
  enable_key_rotation      = true
  rotation_period_in_days  = 365
  deletion_window_in_days  = var.deletion_window_in_days
  multi_region             = false
  policy                   = each.value.policy

  tags = merge(var.tags, { "ward:key-purpose" = each.key })
}

resource "aws_kms_alias" "symmetric" {
  for_each = local.symmetric_keys

  name          = "alias/${var.name}/${each.key}"
  target_key_id = aws_kms_key.symmetric[each.key].key_id
}
