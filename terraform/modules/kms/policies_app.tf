# Key policies for the application's root key (field encryption; it also wraps
# Ward's Ed25519 audit-checkpoint signing key, so no signing key lives in KMS)
# and the logging key, which AWS services use as service principals.

data "aws_iam_policy_document" "field" {
  #checkov:skip=CKV_AWS_111:KMS key policy - Resource * here means this key only, and every statement names its principals.
  #checkov:skip=CKV_AWS_356:KMS key policy - Resource * here means this key only, and every statement names its principals.
  source_policy_documents = [data.aws_iam_policy_document.admin.json]

  # Ward wraps with Encrypt/Decrypt under an encryption context: the field KEKs
  # and the audit-log signing seed are never stored unwrapped.
  statement {
    sid    = "WardTaskWrapsAndUnwrapsKeks"
    effect = "Allow"
    actions = [
      "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext",
      "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:DescribeKey",
    ]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [var.app_task_role_arn]
    }
  }

  dynamic "statement" {
    for_each = length(var.break_glass_arns) > 0 ? [1] : []
    content {
      sid       = "BreakGlassDecryptOnly"
      effect    = "Allow"
      actions   = ["kms:Decrypt", "kms:DescribeKey"]
      resources = ["*"]

      principals {
        type        = "AWS"
        identifiers = var.break_glass_arns
      }
    }
  }
}

data "aws_iam_policy_document" "logs" {
  #checkov:skip=CKV_AWS_356:KMS key policy - Resource * here means this key only, and every statement names its principals.
  source_policy_documents = [data.aws_iam_policy_document.admin.json, data.aws_iam_policy_document.via_service["logs"].json]

  statement {
    sid       = "CloudWatchLogsEncryptsLogGroups"
    effect    = "Allow"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
    }
  }

  statement {
    sid       = "CloudTrailEncryptsTrailLogs"
    effect    = "Allow"
    actions   = ["kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }

    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:cloudtrail:arn"
      values   = ["arn:${local.partition}:cloudtrail:*:${local.account_id}:trail/*"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "CloudTrailDescribesKey"
    effect    = "Allow"
    actions   = ["kms:DescribeKey"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }
  }

  statement {
    sid       = "AlarmAndEventPublishersUseEncryptedTopics"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com", "events.amazonaws.com", "backup.amazonaws.com", "cloudtrail.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}
