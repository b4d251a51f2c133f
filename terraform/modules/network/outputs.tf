output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "IPv4 CIDR of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "public_subnet_ids" {
  description = "IDs of the public subnets (ALB and NAT only), one per AZ."
  value       = [for az in var.azs : aws_subnet.public[az].id]
}

output "app_subnet_ids" {
  description = "IDs of the private application subnets (Fargate tasks), one per AZ."
  value       = [for az in var.azs : aws_subnet.app[az].id]
}

output "data_subnet_ids" {
  description = "IDs of the private data subnets (RDS, ElastiCache), one per AZ; no internet route."
  value       = [for az in var.azs : aws_subnet.data[az].id]
}

output "data_subnet_cidrs" {
  description = "CIDRs of the data subnets, for security-group egress rules of the app tier."
  value       = [for az in var.azs : local.data_cidrs[az]]
}

output "nat_public_ips" {
  description = "Public IPs of the NAT gateways (what external IdPs and webhooks see as Ward's source address)."
  value       = [for eip in aws_eip.nat : eip.public_ip]
}

output "flow_log_group_name" {
  description = "Name of the CloudWatch log group receiving VPC flow logs."
  value       = aws_cloudwatch_log_group.flow_logs.name
}
