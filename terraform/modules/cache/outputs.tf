output "replication_group_id" {
  description = "ID of the replication group (the ReplicationGroupId metric dimension)."
  value       = aws_elasticache_replication_group.this.replication_group_id
}

output "primary_endpoint_address" {
  description = "Primary endpoint of the replication group."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "port" {
  description = "Redis port."
  value       = aws_elasticache_replication_group.this.port
}

output "redis_url" {
  description = "WARD_REDIS_URL: rediss:// (TLS) URL with the AUTH token. Sensitive."
  value       = "rediss://:${random_password.auth.result}@${aws_elasticache_replication_group.this.primary_endpoint_address}:${aws_elasticache_replication_group.this.port}"
  sensitive   = true
}

output "security_group_id" {
  description = "ID of the Redis security group."
  value       = aws_security_group.redis.id
}
