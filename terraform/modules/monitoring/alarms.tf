# Alarms: service health (ALB, ECS, RDS, Redis), security events from CloudTrail
# (metric filters), and GuardDuty / Security Hub findings, all to one encrypted
# SNS topic.

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = var.logs_kms_key_arn
  tags              = var.tags
}

resource "aws_sns_topic_policy" "alarms" {
  arn = aws_sns_topic.alarms.arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AwsServicesInThisAccountPublish"
      Effect    = "Allow"
      Principal = { Service = ["cloudwatch.amazonaws.com", "events.amazonaws.com", "backup.amazonaws.com"] }
      Action    = "SNS:Publish"
      Resource  = aws_sns_topic.alarms.arn
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })
}

resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.alarm_emails)

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.key
}

locals {
  redis_members = [for i in range(var.redis_num_cache_clusters) : format("%s-%03d", var.redis_replication_group_id, i + 1)]

  service_alarms = merge(
    {
      alb-target-5xx  = { ns = "AWS/ApplicationELB", metric = "HTTPCode_Target_5XX_Count", stat = "Sum", op = "GreaterThanThreshold", threshold = 50, dims = tomap({ LoadBalancer = var.alb_arn_suffix }) }
      alb-unhealthy   = { ns = "AWS/ApplicationELB", metric = "UnHealthyHostCount", stat = "Maximum", op = "GreaterThanThreshold", threshold = 0, dims = tomap({ LoadBalancer = var.alb_arn_suffix, TargetGroup = var.target_group_arn_suffix }) }
      ecs-cpu-high    = { ns = "AWS/ECS", metric = "CPUUtilization", stat = "Average", op = "GreaterThanThreshold", threshold = 85, dims = tomap({ ClusterName = var.ecs_cluster_name, ServiceName = var.ecs_service_name }) }
      ecs-memory-high = { ns = "AWS/ECS", metric = "MemoryUtilization", stat = "Average", op = "GreaterThanThreshold", threshold = 85, dims = tomap({ ClusterName = var.ecs_cluster_name, ServiceName = var.ecs_service_name }) }
      rds-cpu-high    = { ns = "AWS/RDS", metric = "CPUUtilization", stat = "Average", op = "GreaterThanThreshold", threshold = 80, dims = tomap({ DBInstanceIdentifier = var.db_instance_identifier }) }
      rds-storage-low = { ns = "AWS/RDS", metric = "FreeStorageSpace", stat = "Minimum", op = "LessThanThreshold", threshold = 10737418240, dims = tomap({ DBInstanceIdentifier = var.db_instance_identifier }) }
      rds-memory-low  = { ns = "AWS/RDS", metric = "FreeableMemory", stat = "Minimum", op = "LessThanThreshold", threshold = 268435456, dims = tomap({ DBInstanceIdentifier = var.db_instance_identifier }) }
      rds-connections = { ns = "AWS/RDS", metric = "DatabaseConnections", stat = "Maximum", op = "GreaterThanThreshold", threshold = var.db_max_connections_alarm, dims = tomap({ DBInstanceIdentifier = var.db_instance_identifier }) }
    },
    { for m in local.redis_members : "redis-cpu-${m}" => { ns = "AWS/ElastiCache", metric = "EngineCPUUtilization", stat = "Average", op = "GreaterThanThreshold", threshold = 80, dims = tomap({ CacheClusterId = m }) } },
    { for m in local.redis_members : "redis-memory-${m}" => { ns = "AWS/ElastiCache", metric = "DatabaseMemoryUsagePercentage", stat = "Average", op = "GreaterThanThreshold", threshold = 80, dims = tomap({ CacheClusterId = m }) } },
  )

  # CloudTrail metric filters for security-relevant events.
  security_filters = merge(
    {
      root-account-usage    = "{ $.userIdentity.type = \"Root\" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != \"AwsServiceEvent\" }"
      unauthorized-api      = "{ ($.errorCode = \"*UnauthorizedOperation\") || ($.errorCode = \"AccessDenied*\") }"
      cloudtrail-changed    = "{ ($.eventName = StopLogging) || ($.eventName = DeleteTrail) || ($.eventName = UpdateTrail) || ($.eventName = PutEventSelectors) }"
      kms-key-policy-or-del = "{ ($.eventSource = kms.amazonaws.com) && (($.eventName = PutKeyPolicy) || ($.eventName = DisableKey) || ($.eventName = ScheduleKeyDeletion)) }"
      iam-policy-changed    = "{ ($.eventName = PutGroupPolicy) || ($.eventName = PutRolePolicy) || ($.eventName = PutUserPolicy) || ($.eventName = DeleteGroupPolicy) || ($.eventName = DeleteRolePolicy) || ($.eventName = DeleteUserPolicy) || ($.eventName = CreatePolicy) || ($.eventName = DeletePolicy) || ($.eventName = CreatePolicyVersion) || ($.eventName = DeletePolicyVersion) || ($.eventName = AttachRolePolicy) || ($.eventName = DetachRolePolicy) || ($.eventName = AttachUserPolicy) || ($.eventName = DetachUserPolicy) || ($.eventName = AttachGroupPolicy) || ($.eventName = DetachGroupPolicy) }"
      audit-archive-changed = "{ ($.eventSource = s3.amazonaws.com) && ($.requestParameters.bucketName = \"${var.audit_archive_bucket_name}\") && (($.eventName = PutBucketPolicy) || ($.eventName = DeleteBucketPolicy) || ($.eventName = PutObjectLockConfiguration) || ($.eventName = PutBucketLifecycle)) }"
      backup-vault-changed  = "{ ($.eventSource = backup.amazonaws.com) && (($.eventName = DeleteBackupVaultLockConfiguration) || ($.eventName = DeleteRecoveryPoint) || ($.eventName = DeleteBackupVault)) }"
    },
    length(var.break_glass_role_arns) == 0 ? {} : {
      break-glass-used = "{ ($.eventName = AssumeRole) && (${join(" || ", [for arn in var.break_glass_role_arns : "($.requestParameters.roleArn = \"${arn}\")"])}) }"
    },
  )
}

resource "aws_cloudwatch_metric_alarm" "service" {
  for_each = local.service_alarms

  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = "Ward ${var.name}: ${each.value.metric} ${each.value.op} ${each.value.threshold}"
  namespace           = each.value.ns
  metric_name         = each.value.metric
  statistic           = each.value.stat
  comparison_operator = each.value.op
  threshold           = each.value.threshold
  dimensions          = each.value.dims
  period              = 300
  evaluation_periods  = 2
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = var.tags
}

resource "aws_cloudwatch_log_metric_filter" "security" {
  for_each = local.security_filters

  name           = "${var.name}-${each.key}"
  log_group_name = aws_cloudwatch_log_group.trail.name
  pattern        = each.value

  metric_transformation {
    name      = each.key
    namespace = "Ward/${var.name}/Security"
    value     = "1"
  }
}

resource "aws_cloudwatch_metric_alarm" "security" {
  for_each = local.security_filters

  alarm_name          = "${var.name}-security-${each.key}"
  alarm_description   = "Ward ${var.name}: CloudTrail recorded ${each.key}"
  namespace           = "Ward/${var.name}/Security"
  metric_name         = each.key
  statistic           = "Sum"
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = each.key == "unauthorized-api" ? 5 : 1
  period              = 300
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  tags                = var.tags

  depends_on = [aws_cloudwatch_log_metric_filter.security]
}

resource "aws_cloudwatch_event_rule" "findings" {
  name        = "${var.name}-security-findings"
  description = "High and critical GuardDuty and Security Hub findings"
  event_pattern = jsonencode({
    source = ["aws.guardduty", "aws.securityhub"]
    "$or" = [
      { detail = { severity = [{ numeric = [">=", 7] }] } },
      { detail = { findings = { Severity = { Label = ["HIGH", "CRITICAL"] }, Workflow = { Status = ["NEW"] } } } },
    ]
  })
  tags = var.tags
}

resource "aws_cloudwatch_event_target" "findings" {
  rule = aws_cloudwatch_event_rule.findings.name
  arn  = aws_sns_topic.alarms.arn
}
