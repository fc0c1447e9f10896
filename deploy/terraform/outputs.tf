output "alb_dns_name" {
  description = "Host name of the load balancer: point the public host name (CNAME or alias) here."
  value       = aws_lb.main.dns_name
}

output "ecr_repository_url" {
  description = "Push the engine image here as <url>:<version in Cargo.toml>."
  value       = aws_ecr_repository.engine.repository_url
}

output "ecs_cluster_name" {
  description = "ECS cluster running the api and worker services."
  value       = aws_ecs_cluster.main.name
}

output "ecs_services" {
  description = "ECS service name of each role."
  value       = { for role, s in aws_ecs_service.engine : role => s.name }
}

output "log_groups" {
  description = "CloudWatch log group of each role."
  value       = { for role, g in aws_cloudwatch_log_group.engine : role => g.name }
}

output "database_endpoint" {
  description = "PostgreSQL host:port (TLS required; reachable from the tasks only)."
  value       = aws_db_instance.main.endpoint
}

output "redis_endpoint" {
  description = "Primary endpoint of the Redis replication group (TLS, AUTH token in the REDIS_URL secret)."
  value       = aws_elasticache_replication_group.main.primary_endpoint_address
}

output "amqp_endpoint" {
  description = "AMQPS endpoint of the RabbitMQ broker."
  value       = aws_mq_broker.main.instances[0].endpoints[0]
}

output "secret_arns" {
  description = "Secrets Manager ARN of each engine secret (values are never output)."
  value = {
    DATABASE_URL           = aws_secretsmanager_secret.database_url.arn
    AMQP_URL               = aws_secretsmanager_secret.amqp_url.arn
    REDIS_URL              = aws_secretsmanager_secret.redis_url.arn
    JWT_SECRET             = aws_secretsmanager_secret.jwt.arn
    PAYMENT_WEBHOOK_SECRET = aws_secretsmanager_secret.webhook.arn
    SMTP_URL               = aws_secretsmanager_secret.smtp_url.arn
  }
}

output "receipts_bucket" {
  description = "S3 bucket of the stored receipt PDFs (S3_BUCKET of both roles)."
  value       = aws_s3_bucket.receipts.bucket
}
