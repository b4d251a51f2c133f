# Threat detection and continuous compliance. These are per-account, per-region
# singletons: if the account already has them (e.g. from Control Tower or an
# organisation delegated administrator), switch them off with the enable_* flags.

# ---- GuardDuty -------------------------------------------------------------------

resource "aws_guardduty_detector" "this" {
  #checkov:skip=CKV2_AWS_3:Single-account stack; organisation-wide auto-enable is configured from the GuardDuty delegated-administrator account, not from a workload account.
  count = var.enable_guardduty ? 1 : 0

  enable                       = true
  finding_publishing_frequency = "FIFTEEN_MINUTES"
  tags                         = var.tags
}

resource "aws_guardduty_detector_feature" "this" {
  for_each = var.enable_guardduty ? {
    S3_DATA_EVENTS     = "ENABLED"
    RDS_LOGIN_EVENTS   = "ENABLED"
    RUNTIME_MONITORING = var.guardduty_runtime_monitoring ? "ENABLED" : "DISABLED"
  } : {}

  detector_id = aws_guardduty_detector.this[0].id
  name        = each.key
  status      = each.value

  dynamic "additional_configuration" {
    for_each = each.key == "RUNTIME_MONITORING" ? ["ECS_FARGATE_AGENT_MANAGEMENT"] : []
    content {
      name   = additional_configuration.value
      status = each.value
    }
  }
}

# ---- Security Hub ----------------------------------------------------------------

resource "aws_securityhub_account" "this" {
  count = var.enable_security_hub ? 1 : 0

  enable_default_standards  = false
  auto_enable_controls      = true
  control_finding_generator = "SECURITY_CONTROL"
}

resource "aws_securityhub_standards_subscription" "this" {
  for_each = var.enable_security_hub ? toset([
    "arn:${local.partition}:securityhub:${local.region}::standards/aws-foundational-security-best-practices/v/1.0.0",
    "arn:${local.partition}:securityhub:${local.region}::standards/nist-800-53/v/5.0.0",
  ]) : toset([])

  standards_arn = each.key
  depends_on    = [aws_securityhub_account.this]
}

# ---- AWS Config + HIPAA conformance pack ------------------------------------------

data "aws_iam_policy_document" "config_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["config.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "config" {
  count = var.enable_config ? 1 : 0

  name               = "${var.name}-aws-config"
  assume_role_policy = data.aws_iam_policy_document.config_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "config" {
  count = var.enable_config ? 1 : 0

  role       = aws_iam_role.config[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWS_ConfigRole"
}

resource "aws_iam_role_policy" "config_delivery" {
  count = var.enable_config ? 1 : 0

  name = "deliver-to-trail-bucket"
  role = aws_iam_role.config[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "DeliverSnapshotsAndHistory"
        Effect   = "Allow"
        Action   = ["s3:PutObject"]
        Resource = "${local.bucket_arn}/config/AWSLogs/${local.account_id}/Config/*"
      },
      {
        Sid      = "CheckBucket"
        Effect   = "Allow"
        Action   = ["s3:GetBucketAcl", "s3:ListBucket"]
        Resource = local.bucket_arn
      },
      {
        Sid       = "EncryptDeliveriesThroughS3"
        Effect    = "Allow"
        Action    = ["kms:GenerateDataKey", "kms:Decrypt"]
        Resource  = var.logs_kms_key_arn
        Condition = { StringEquals = { "kms:ViaService" = "s3.${local.region}.amazonaws.com" } }
      },
    ]
  })
}

resource "aws_config_configuration_recorder" "this" {
  count = var.enable_config ? 1 : 0

  name     = "${var.name}-recorder"
  role_arn = aws_iam_role.config[0].arn

  recording_group {
    all_supported                 = true
    include_global_resource_types = true
  }
}

resource "aws_config_delivery_channel" "this" {
  count = var.enable_config ? 1 : 0

  name           = "${var.name}-delivery"
  s3_bucket_name = module.trail_bucket.bucket_name
  s3_key_prefix  = "config"
  s3_kms_key_arn = var.logs_kms_key_arn

  snapshot_delivery_properties {
    delivery_frequency = "TwentyFour_Hours"
  }

  depends_on = [aws_config_configuration_recorder.this]
}

resource "aws_config_configuration_recorder_status" "this" {
  count = var.enable_config ? 1 : 0

  name       = aws_config_configuration_recorder.this[0].name
  is_enabled = true
  depends_on = [aws_config_delivery_channel.this]
}

# AWS publishes the "Operational Best Practices for HIPAA Security" conformance
# pack as a sample template; upload that YAML to S3 and pass its s3:// URI.
resource "aws_config_conformance_pack" "hipaa" {
  count = var.enable_config ? 1 : 0

  name            = "${var.name}-hipaa-security"
  template_s3_uri = var.hipaa_conformance_pack_template_s3_uri
  depends_on      = [aws_config_configuration_recorder_status.this]
}
