# Archive of Ward's signed audit-log checkpoints, outside the database.
#
# Every checkpoint Ward signs (Ed25519 key that Ward keeps in the database
# wrapped by the root KMS key) is also written here, with S3 Object Lock in
# COMPLIANCE mode: no principal, including the account root, can delete or
# shorten the retention of an object version until it expires. That is what
# makes rewriting history detectable even for someone who controls the
# database: the old checkpoints stay here, signed, and Ward refuses to start
# when the database log is behind or differs from the latest one.
#
# Object keys (WARD_AUDIT_S3_PREFIX = var.checkpoint_prefix):
#   <prefix>checkpoints/<20-digit tree size>  written once (If-None-Match: *)
#   <prefix>checkpoint                        the latest, replaced with If-Match
#
# For the strongest separation, apply this module with a provider for a
# separate "log archive" AWS account (see README); the bucket policy then grants
# the Ward task role cross-account write access.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  bucket_name = "${var.name}-audit-archive-${data.aws_caller_identity.current.account_id}-${data.aws_region.current.name}"
  bucket_arn  = "arn:${data.aws_partition.current.partition}:s3:::${local.bucket_name}"
}

data "aws_iam_policy_document" "archive" {
  statement {
    sid = "WardTaskAppendsCheckpoints"
    # PutObjectRetention: a PUT carrying x-amz-object-lock-* headers
    # (WARD_AUDIT_S3_RETAIN_DAYS) needs it; COMPLIANCE retention can only be
    # set or extended, never shortened or removed.
    actions   = ["s3:PutObject", "s3:PutObjectRetention"]
    resources = ["${local.bucket_arn}/${var.checkpoint_prefix}*"]

    principals {
      type        = "AWS"
      identifiers = [var.writer_role_arn]
    }
  }

  statement {
    sid       = "WardTaskReadsCheckpoints"
    actions   = ["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"]
    resources = [local.bucket_arn, "${local.bucket_arn}/*"]

    principals {
      type        = "AWS"
      identifiers = concat([var.writer_role_arn], var.reader_arns)
    }
  }

  statement {
    sid    = "NobodyDeletesCheckpoints"
    effect = "Deny"
    # COMPLIANCE mode already forbids deleting locked versions; this also stops
    # delete markers from hiding the current checkpoints.
    actions   = ["s3:DeleteObject", "s3:DeleteObjectVersion"]
    resources = [local.bucket_arn, "${local.bucket_arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }
  }
}

module "bucket" {
  source = "../secure-bucket"

  bucket_name       = local.bucket_name
  kms_key_arn       = var.kms_key_arn
  access_log_bucket = var.access_log_bucket
  policy_documents  = [data.aws_iam_policy_document.archive.json]
  object_lock_mode  = "COMPLIANCE"
  object_lock_days  = var.retention_days
  tags              = merge(var.tags, { "ward:data" = "audit-checkpoints" })
}
