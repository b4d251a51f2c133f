output "instance_identifier" {
  description = "RDS instance identifier (the DBInstanceIdentifier metric dimension)."
  value       = aws_db_instance.this.identifier
}

output "instance_arn" {
  description = "ARN of the RDS instance."
  value       = aws_db_instance.this.arn
}

output "resource_id" {
  description = "DbiResourceId, used in rds-db:connect IAM policies for IAM database authentication."
  value       = aws_db_instance.this.resource_id
}

output "address" {
  description = "DNS name of the database endpoint."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "Port of the database endpoint."
  value       = aws_db_instance.this.port
}

output "database_name" {
  description = "Name of Ward's database."
  value       = aws_db_instance.this.db_name
}

output "master_user_secret_arn" {
  description = "ARN of the RDS-managed Secrets Manager secret holding the master credentials (bootstrap and break-glass only)."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "app_username" {
  description = "Database role Ward connects as."
  value       = var.app_username
}

output "app_database_url" {
  description = "WARD_DATABASE_URL for Ward's own role, TLS required. Sensitive: contains the password."
  value       = "postgres://${var.app_username}:${random_password.app.result}@${aws_db_instance.this.address}:${aws_db_instance.this.port}/${aws_db_instance.this.db_name}?sslmode=require"
  sensitive   = true
}

output "security_group_id" {
  description = "ID of the database security group."
  value       = aws_security_group.db.id
}
