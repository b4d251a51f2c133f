# Ward's object storage:
#   - attachments: files users upload to channels (PHI);
#   - exports:     GDPR export bundles and compliance exports (PHI, short-lived);
#   - logs:        S3 server access logs and ALB access logs for the whole stack.
# The audit-checkpoint archive lives in the audit-archive module (Object Lock).

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_elb_service_account" "current" {}

locals {
  suffix = "${data.aws_caller_identity.current.account_id}-${data.aws_region.current.name}"
}

module "attachments" {
  source = "../secure-bucket"

  bucket_name                        = "${var.name}-attachments-${local.suffix}"
  kms_key_arn                        = var.kms_key_arn
  access_log_bucket                  = aws_s3_bucket.logs.id
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
  tags                               = var.tags
}

module "exports" {
  source = "../secure-bucket"

  bucket_name                        = "${var.name}-exports-${local.suffix}"
  kms_key_arn                        = var.kms_key_arn
  access_log_bucket                  = aws_s3_bucket.logs.id
  expiration_days                    = var.export_expiration_days
  noncurrent_version_expiration_days = 1
  backup                             = false
  tags                               = var.tags
}

# ---- Access-log bucket -------------------------------------------------------
# S3 server access logging and ALB access logging can only deliver to buckets
# encrypted with SSE-S3, so this one bucket cannot use the storage KMS key.

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_145:S3 server access logs and ALB access logs can only be delivered to a bucket encrypted with SSE-S3 (AES256), not SSE-KMS.
  #checkov:skip=CKV_AWS_18:This is the access-log target bucket itself; logging it into itself would loop.
  #checkov:skip=CKV_AWS_144:Access logs are protected by versioning, lifecycle and AWS Backup copies; CRR would add a second unlocked copy.
  bucket        = "${var.name}-logs-${local.suffix}"
  force_destroy = false
  tags          = merge(var.tags, { "ward:backup" = "true" })
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket                  = aws_s3_bucket.logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "logs" {
  bucket = aws_s3_bucket.logs.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    id     = "retain-then-expire"
    status = "Enabled"

    filter {}

    expiration {
      days = var.access_log_retention_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 30
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.logs]
}

resource "aws_s3_bucket_notification" "logs" {
  bucket      = aws_s3_bucket.logs.id
  eventbridge = true
}

data "aws_iam_policy_document" "logs" {
  statement {
    sid       = "S3ServerAccessLogDelivery"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/s3/*"]

    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }

  statement {
    sid       = "AlbAccessLogDelivery"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/alb/AWSLogs/${data.aws_caller_identity.current.account_id}/*"]

    # Regions launched before August 2022 deliver from the regional ELB account;
    # newer regions use the log-delivery service principal.
    principals {
      type        = "AWS"
      identifiers = [data.aws_elb_service_account.current.arn]
    }
  }

  statement {
    sid       = "AlbAccessLogDeliveryServicePrincipal"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/alb/AWSLogs/${data.aws_caller_identity.current.account_id}/*"]

    principals {
      type        = "Service"
      identifiers = ["logdelivery.elasticloadbalancing.amazonaws.com"]
    }
  }

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.logs.arn,
      "${aws_s3_bucket.logs.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "logs" {
  bucket = aws_s3_bucket.logs.id
  policy = data.aws_iam_policy_document.logs.json

  depends_on = [aws_s3_bucket_public_access_block.logs]
}
