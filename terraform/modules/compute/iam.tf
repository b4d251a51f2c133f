# Two roles with least privilege:
#   execution role - used by the ECS agent to pull the image, write logs and read
#                    the secrets it injects; the app never gets these rights;
#   task role      - the app's own identity: its S3 buckets only. KMS use (the
#                    root/field key for Encrypt/Decrypt, which also wraps the
#                    audit-log Ed25519 signing key; the storage key through S3
#                    for SSE-KMS, audit archive included) is granted by the key
#                    policies in the kms module, which name this role directly.
#                    The audit archive is append-only: no s3:DeleteObject*, no
#                    s3:BypassGovernanceRetention.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${data.aws_partition.current.partition}:ecs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:*"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-ecs-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid = "EcrAuthToken"
    # ecr:GetAuthorizationToken does not support resource-level permissions;
    # AWS requires Resource "*" for it. It grants no access to any repository.
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "PullWardImageOnly"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = [aws_ecr_repository.ward.arn]
  }

  statement {
    sid       = "WriteAppLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.ward.arn}:*"]
  }

  statement {
    sid       = "ReadInjectedSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [for s in aws_secretsmanager_secret.app : s.arn]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "ecs-execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

resource "aws_iam_role" "task" {
  name               = "${var.name}-ecs-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "task" {
  statement {
    sid       = "ListOwnBuckets"
    actions   = ["s3:ListBucket"]
    resources = var.read_write_bucket_arns
  }

  statement {
    sid       = "AttachmentsAndExports"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = [for arn in var.read_write_bucket_arns : "${arn}/*"]
  }

  # Ward's checkpoint publisher (WARD_AUDIT_S3_*): GET before PUT, If-None-Match
  # on <prefix>checkpoints/<size>, If-Match on <prefix>checkpoint. With
  # WARD_AUDIT_S3_RETAIN_DAYS each PUT carries x-amz-object-lock-* headers,
  # which needs s3:PutObjectRetention.
  statement {
    sid       = "AppendAuditCheckpoints"
    actions   = ["s3:PutObject", "s3:GetObject", "s3:GetObjectVersion", "s3:PutObjectRetention"]
    resources = ["${var.audit_archive_bucket_arn}/${var.audit_archive_prefix}*"]
  }

  # Without ListBucket a missing checkpoint reads as 403 instead of 404 and
  # publishing the first one fails; S3 evaluates s3:prefix as the object key.
  statement {
    sid       = "ListAuditCheckpoints"
    actions   = ["s3:ListBucket"]
    resources = [var.audit_archive_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.audit_archive_prefix}*"]
    }
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "ward-app"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

# ---- Task security group -------------------------------------------------------

resource "aws_security_group" "task" {
  name        = "${var.name}-ward-task"
  description = "Ward tasks: in from the ALB only; out to data tier and HTTPS"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "from_alb" {
  security_group_id            = aws_security_group.task.id
  description                  = "Ward HTTP/WebSocket from the ALB"
  ip_protocol                  = "tcp"
  from_port                    = var.container_port
  to_port                      = var.container_port
  referenced_security_group_id = var.alb_security_group_id
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.task.id
  description       = "HTTPS to VPC endpoints, and via NAT to external IdPs (OIDC/SAML metadata, JWKS)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "data_tier" {
  for_each = { for pair in setproduct(var.data_subnet_cidrs, [5432, 6379]) : "${pair[0]}-${pair[1]}" => pair }

  security_group_id = aws_security_group.task.id
  description       = "PostgreSQL/Redis in the data subnets"
  ip_protocol       = "tcp"
  from_port         = each.value[1]
  to_port           = each.value[1]
  cidr_ipv4         = each.value[0]
}
