# Ward on ECS Fargate: `ward serve` in private subnets behind the ALB, read-only
# root filesystem, non-root user, all Linux capabilities dropped, configuration
# from WARD_* environment variables and secrets injected from Secrets Manager.

data "aws_region" "current" {}

locals {
  image = coalesce(var.container_image, "${aws_ecr_repository.ward.repository_url}:${var.image_tag}")

  container = {
    name                   = "ward"
    image                  = local.image
    essential              = true
    command                = var.command
    user                   = var.run_as_user
    readonlyRootFilesystem = true
    privileged             = false
    stopTimeout            = 120

    portMappings = [{ name = "http", containerPort = var.container_port, protocol = "tcp" }]
    environment  = [for k in sort(keys(var.environment)) : { name = k, value = var.environment[k] }]
    secrets      = [for k in sort(keys(local.secret_env)) : { name = k, valueFrom = aws_secretsmanager_secret.app[local.secret_env[k]].arn }]
    # The root filesystem is read-only: /tmp and the image's data dir (WARD_DATA_DIR,
    # /var/lib/ward: GDPR export archives) are task storage. Keys are in KMS, the database
    # in RDS and the audit checkpoints in S3, so nothing there must outlive the task.
    mountPoints = [
      { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
      { sourceVolume = "data", containerPath = "/var/lib/ward", readOnly = false },
    ]
    ulimits = [{ name = "nofile", softLimit = var.nofile_limit, hardLimit = var.nofile_limit }]

    linuxParameters = {
      initProcessEnabled = true
      capabilities       = { drop = ["ALL"] }
    }

    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.ward.name
        awslogs-region        = data.aws_region.current.name
        awslogs-stream-prefix = "ward"
      }
    }
  }
}

resource "aws_ecr_repository" "ward" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = false

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.storage_kms_key_arn
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "ward" {
  repository = aws_ecr_repository.ward.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Expire untagged images after 14 days"
      selection    = { tagStatus = "untagged", countType = "sinceImagePushed", countUnit = "days", countNumber = 14 }
      action       = { type = "expire" }
    }]
  })
}

resource "aws_cloudwatch_log_group" "ward" {
  name              = "/ward/${var.name}/app"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn
  tags              = var.tags
}

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = var.tags
}

resource "aws_ecs_task_definition" "ward" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  task_role_arn            = aws_iam_role.task.arn
  execution_role_arn       = aws_iam_role.execution.arn
  container_definitions    = jsonencode([local.container])

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # Writable scratch space on the task's (encrypted) ephemeral storage; the
  # root filesystem itself is read-only.
  volume {
    name = "tmp"
  }

  volume {
    name = "data"
  }

  tags = var.tags
}

resource "aws_ecs_service" "ward" {
  name                               = "ward"
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.ward.arn
  desired_count                      = var.min_capacity
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  enable_execute_command             = false
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"
  health_check_grace_period_seconds  = 60
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.app_subnet_ids
    security_groups  = [aws_security_group.task.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = var.target_group_arn
    container_name   = "ward"
    container_port   = var.container_port
  }

  lifecycle {
    ignore_changes = [desired_count]
  }

  tags = var.tags
}

resource "aws_appautoscaling_target" "ward" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.ward.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_capacity
  max_capacity       = var.max_capacity
}

resource "aws_appautoscaling_policy" "ward" {
  for_each = {
    cpu    = { metric = "ECSServiceAverageCPUUtilization", target = var.cpu_target_percent }
    memory = { metric = "ECSServiceAverageMemoryUtilization", target = var.memory_target_percent }
  }

  name               = "${var.name}-${each.key}"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.ward.service_namespace
  resource_id        = aws_appautoscaling_target.ward.resource_id
  scalable_dimension = aws_appautoscaling_target.ward.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value = each.value.target
    # Scale in slowly: every removed task drops its WebSocket connections.
    scale_in_cooldown  = 600
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = each.value.metric
    }
  }
}
