output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster."
  value       = aws_ecs_cluster.this.arn
}

output "service_name" {
  description = "Name of the ECS service running `ward serve`."
  value       = aws_ecs_service.ward.name
}

output "task_role_arn" {
  description = "ARN of the task role (Ward's AWS identity)."
  value       = aws_iam_role.task.arn
}

output "execution_role_arn" {
  description = "ARN of the task execution role (image pull, logs, secret injection)."
  value       = aws_iam_role.execution.arn
}

output "security_group_id" {
  description = "ID of the task security group; the data tier accepts connections only from it."
  value       = aws_security_group.task.id
}

output "ecr_repository_url" {
  description = "URL of the ECR repository to push Ward images to."
  value       = aws_ecr_repository.ward.repository_url
}

output "log_group_name" {
  description = "Name of the CloudWatch log group receiving Ward's JSON logs."
  value       = aws_cloudwatch_log_group.ward.name
}

output "secret_arns" {
  description = "Map of injected environment variable => Secrets Manager secret ARN."
  value       = { for env, suffix in local.secret_env : env => aws_secretsmanager_secret.app[suffix].arn }
}
