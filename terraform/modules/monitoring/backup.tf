# AWS Backup: a KMS-encrypted vault under Vault Lock, daily continuous backups
# (point-in-time restore) and monthly long-term recovery points for every
# resource tagged ward:backup=true (the RDS instance and the PHI buckets).
# Once changeable_for_days has passed, the lock is in compliance mode: nobody,
# including the account root, can delete recovery points early or remove the lock.

resource "aws_backup_vault" "this" {
  name          = "${var.name}-vault"
  kms_key_arn   = var.backup_kms_key_arn
  force_destroy = false
  tags          = var.tags
}

resource "aws_backup_vault_lock_configuration" "this" {
  backup_vault_name   = aws_backup_vault.this.name
  min_retention_days  = 7
  max_retention_days  = max(var.backup_monthly_retention_days, var.backup_daily_retention_days)
  changeable_for_days = var.backup_vault_lock_changeable_for_days
}

resource "aws_backup_vault_notifications" "this" {
  backup_vault_name   = aws_backup_vault.this.name
  sns_topic_arn       = aws_sns_topic.alarms.arn
  backup_vault_events = ["BACKUP_JOB_FAILED", "RESTORE_JOB_FAILED", "COPY_JOB_FAILED", "S3_BACKUP_OBJECT_FAILED"]
}

resource "aws_backup_plan" "this" {
  name = "${var.name}-plan"

  rule {
    rule_name                = "daily-continuous"
    target_vault_name        = aws_backup_vault.this.name
    schedule                 = "cron(0 5 * * ? *)"
    enable_continuous_backup = true
    start_window             = 60
    completion_window        = 360

    lifecycle {
      delete_after = var.backup_daily_retention_days
    }

    dynamic "copy_action" {
      for_each = var.backup_copy_destination_vault_arn == null ? [] : [var.backup_copy_destination_vault_arn]
      content {
        destination_vault_arn = copy_action.value
        lifecycle {
          delete_after = var.backup_daily_retention_days
        }
      }
    }
  }

  rule {
    rule_name         = "monthly-long-term"
    target_vault_name = aws_backup_vault.this.name
    schedule          = "cron(0 6 1 * ? *)"
    start_window      = 60
    completion_window = 720

    lifecycle {
      delete_after = var.backup_monthly_retention_days
    }
  }

  tags = var.tags
}

data "aws_iam_policy_document" "backup_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["backup.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "backup" {
  name               = "${var.name}-aws-backup"
  assume_role_policy = data.aws_iam_policy_document.backup_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "backup" {
  for_each = toset([
    "AWSBackupServiceRolePolicyForBackup",
    "AWSBackupServiceRolePolicyForRestores",
    "AWSBackupServiceRolePolicyForS3Backup",
    "AWSBackupServiceRolePolicyForS3Restore",
  ])

  role       = aws_iam_role.backup.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/${startswith(each.key, "AWSBackupServiceRolePolicyForS3") ? "" : "service-role/"}${each.key}"
}

resource "aws_backup_selection" "tagged" {
  name         = "${var.name}-tagged"
  plan_id      = aws_backup_plan.this.id
  iam_role_arn = aws_iam_role.backup.arn

  # Tag-based only: AWS Backup ORs `resources` with tag conditions, so listing
  # "*" there would back up every resource in the account.
  selection_tag {
    type  = "STRINGEQUALS"
    key   = "ward:backup"
    value = "true"
  }
}
