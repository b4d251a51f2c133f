# Key policies. In a key policy, Resource "*" means "this key".

data "aws_iam_policy_document" "admin" {
  #checkov:skip=CKV_AWS_109:KMS key policy - Resource * here means this key only, and every statement names its principals.
  #checkov:skip=CKV_AWS_111:KMS key policy - Resource * here means this key only, and every statement names its principals.
  #checkov:skip=CKV_AWS_356:KMS key policy - Resource * here means this key only, and every statement names its principals.
  statement {
    sid    = "KeyAdministrationWithoutUse"
    effect = "Allow"
    # Deliberately no Encrypt/Decrypt/GenerateDataKey/ReEncrypt/CreateGrant.
    actions = [
      "kms:CancelKeyDeletion", "kms:CreateAlias", "kms:DeleteAlias", "kms:DescribeKey",
      "kms:DisableKey", "kms:DisableKeyRotation", "kms:EnableKey", "kms:EnableKeyRotation",
      "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListAliases",
      "kms:ListGrants", "kms:ListKeyPolicies", "kms:ListKeyRotations", "kms:ListResourceTags",
      "kms:PutKeyPolicy", "kms:RevokeGrant", "kms:RotateKeyOnDemand", "kms:ScheduleKeyDeletion",
      "kms:TagResource", "kms:UntagResource", "kms:UpdateAlias", "kms:UpdateKeyDescription",
    ]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = var.key_admin_arns
    }
  }
}

# Principals of this account may use a data key only through the named AWS
# services (and only if their own IAM policy also allows it). Grants may only be
# created for AWS resources, which is how RDS, ElastiCache, Backup and Secrets
# Manager attach the key to what they manage.
locals {
  via_service = {
    database = ["rds.${local.region}.amazonaws.com", "elasticache.${local.region}.amazonaws.com"]
    storage  = ["s3.${local.region}.amazonaws.com", "ecr.${local.region}.amazonaws.com"]
    logs     = ["s3.${local.region}.amazonaws.com", "sns.${local.region}.amazonaws.com"]
    secrets  = ["secretsmanager.${local.region}.amazonaws.com"]
    backup   = ["backup.${local.region}.amazonaws.com"]
  }
}

data "aws_iam_policy_document" "via_service" {
  for_each = local.via_service

  statement {
    sid       = "UseThroughAwsServiceOnly"
    effect    = "Allow"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.root_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:CallerAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = each.value
    }
  }

  statement {
    sid       = "GrantsOnlyForAwsResources"
    effect    = "Allow"
    actions   = ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.root_arn]
    }

    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = each.value
    }
  }
}

data "aws_iam_policy_document" "database" {
  source_policy_documents = [data.aws_iam_policy_document.admin.json, data.aws_iam_policy_document.via_service["database"].json]
}

data "aws_iam_policy_document" "backup" {
  source_policy_documents = [data.aws_iam_policy_document.admin.json, data.aws_iam_policy_document.via_service["backup"].json]
}

data "aws_iam_policy_document" "storage" {
  source_policy_documents = [data.aws_iam_policy_document.admin.json, data.aws_iam_policy_document.via_service["storage"].json]

  statement {
    sid       = "WardTaskUsesBucketsThroughS3"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [var.app_task_role_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "secrets" {
  source_policy_documents = [data.aws_iam_policy_document.admin.json, data.aws_iam_policy_document.via_service["secrets"].json]

  statement {
    sid       = "EcsExecutionRoleReadsSecrets"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:DescribeKey"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [var.app_execution_role_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = local.via_service.secrets
    }
  }
}
