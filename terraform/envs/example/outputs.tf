output "alb_dns_name" {
  description = "DNS name of the ALB; create a CNAME or alias record for Ward's hostname pointing at it."
  value       = module.edge.alb_dns_name
}

output "alb_zone_id" {
  description = "Hosted zone ID of the ALB for Route 53 alias records."
  value       = module.edge.alb_zone_id
}

output "ecr_repository_url" {
  description = "Push Ward images here (tags are immutable)."
  value       = module.compute.ecr_repository_url
}

output "ward_environment" {
  description = "Non-secret WARD_* environment of `ward serve`, as wired into the task definition."
  value       = local.ward_environment
}

output "ward_secret_arns" {
  description = "Secrets Manager ARNs injected as WARD_API_KEY, WARD_API_SECRET, WARD_DATABASE_URL and WARD_REDIS_URL."
  value       = module.compute.secret_arns
}

output "database_address" {
  description = "RDS endpoint address."
  value       = module.database.address
}

output "database_master_secret_arn" {
  description = "RDS-managed master credentials (bootstrap of the ward_app role and break-glass only)."
  value       = module.database.master_user_secret_arn
}

output "database_app_username" {
  description = "PostgreSQL role Ward connects as; create it once with the bootstrap SQL in the README."
  value       = module.database.app_username
}

output "redis_primary_endpoint" {
  description = "ElastiCache primary endpoint (TLS, AUTH)."
  value       = module.cache.primary_endpoint_address
}

output "kms_key_arns" {
  description = "KMS key ARNs by purpose."
  value       = module.kms.key_arns
}

output "audit_checkpoint_location" {
  description = "Where Ward publishes signed audit checkpoints: s3://<bucket>/<prefix>checkpoints/<20-digit size> (one per tree size, never overwritten) and s3://<bucket>/<prefix>checkpoint (the latest). Verify them with the key printed by `ward audit verifier-key`."
  value       = "s3://${module.audit_archive.bucket_name}/${module.audit_archive.checkpoint_prefix}"
}

output "bucket_names" {
  description = "S3 bucket names by purpose."
  value = {
    attachments   = module.storage.attachments_bucket_name
    exports       = module.storage.exports_bucket_name
    audit_archive = module.audit_archive.bucket_name
    access_logs   = module.storage.log_bucket_name
    cloudtrail    = module.monitoring.trail_bucket_name
  }
}

output "alarm_topic_arn" {
  description = "SNS topic for alarms and security findings."
  value       = module.monitoring.alarm_topic_arn
}

output "ecs_cluster_name" {
  description = "ECS cluster name (for deployments: aws ecs update-service)."
  value       = module.compute.cluster_name
}

output "nat_public_ips" {
  description = "Egress IPs of the stack (allow-list them at external IdPs if required)."
  value       = module.network.nat_public_ips
}
