output "alb_arn" {
  description = "ARN of the ALB."
  value       = aws_lb.this.arn
}

output "alb_arn_suffix" {
  description = "ARN suffix of the ALB, the LoadBalancer dimension of its CloudWatch metrics."
  value       = aws_lb.this.arn_suffix
}

output "alb_dns_name" {
  description = "DNS name of the ALB; point Ward's hostname (CNAME or Route 53 alias) at it."
  value       = aws_lb.this.dns_name
}

output "alb_zone_id" {
  description = "Route 53 hosted zone ID of the ALB, for alias records."
  value       = aws_lb.this.zone_id
}

output "security_group_id" {
  description = "ID of the ALB security group; Ward tasks accept traffic only from it."
  value       = aws_security_group.alb.id
}

output "target_group_arn" {
  description = "ARN of the target group Ward tasks register in (available once the HTTPS listener forwards to it, which ECS requires)."
  value       = aws_lb_target_group.ward.arn
  depends_on  = [aws_lb_listener.https]
}

output "target_group_arn_suffix" {
  description = "ARN suffix of the target group, the TargetGroup dimension of its CloudWatch metrics."
  value       = aws_lb_target_group.ward.arn_suffix
}

output "https_listener_arn" {
  description = "ARN of the HTTPS listener (the only listener)."
  value       = aws_lb_listener.https.arn
}

output "web_acl_arn" {
  description = "ARN of the WAF web ACL attached to the ALB."
  value       = aws_wafv2_web_acl.this.arn
}
