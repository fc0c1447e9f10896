# Every secret of the engine lives in Secrets Manager; the task definitions name only their ARNs.

resource "random_password" "jwt" {
  length  = 64
  special = false
}

resource "random_password" "webhook" {
  length  = 64
  special = false
}

# Shared by the API tasks: a write forwarded to its event's owner carries it.
resource "random_password" "cluster" {
  length  = 64
  special = false
}

resource "aws_secretsmanager_secret" "database_url" {
  name = "${local.name}/DATABASE_URL"
}

resource "aws_secretsmanager_secret_version" "database_url" {
  secret_id = aws_secretsmanager_secret.database_url.id
  # verify-full against Amazon RDS's CA, which the image carries (deploy/docker/Dockerfile).
  secret_string = "postgres://boxoffice:${random_password.db.result}@${aws_db_instance.main.address}:${aws_db_instance.main.port}/boxoffice?sslmode=verify-full&sslrootcert=/app/certs/rds-ca.pem"
}

resource "aws_secretsmanager_secret" "amqp_url" {
  name = "${local.name}/AMQP_URL"
}

resource "aws_secretsmanager_secret_version" "amqp_url" {
  secret_id = aws_secretsmanager_secret.amqp_url.id
  # The broker's endpoint is amqps://host:5671; its certificate chains to a public root.
  secret_string = "${replace(aws_mq_broker.main.instances[0].endpoints[0], "amqps://", "amqps://boxoffice:${random_password.mq.result}@")}/%2f"
}

resource "aws_secretsmanager_secret" "redis_url" {
  name = "${local.name}/REDIS_URL"
}

resource "aws_secretsmanager_secret_version" "redis_url" {
  secret_id     = aws_secretsmanager_secret.redis_url.id
  secret_string = "rediss://:${random_password.redis.result}@${aws_elasticache_replication_group.main.primary_endpoint_address}:6379"
}

resource "aws_secretsmanager_secret" "jwt" {
  name = "${local.name}/JWT_SECRET"
}

resource "aws_secretsmanager_secret_version" "jwt" {
  secret_id     = aws_secretsmanager_secret.jwt.id
  secret_string = random_password.jwt.result
}

resource "aws_secretsmanager_secret" "webhook" {
  name = "${local.name}/PAYMENT_WEBHOOK_SECRET"
}

resource "aws_secretsmanager_secret_version" "webhook" {
  secret_id     = aws_secretsmanager_secret.webhook.id
  secret_string = random_password.webhook.result
}

resource "aws_secretsmanager_secret" "cluster" {
  name = "${local.name}/CLUSTER_SECRET"
}

resource "aws_secretsmanager_secret_version" "cluster" {
  secret_id     = aws_secretsmanager_secret.cluster.id
  secret_string = random_password.cluster.result
}

resource "aws_secretsmanager_secret" "smtp_url" {
  name = "${local.name}/SMTP_URL"
}

resource "aws_secretsmanager_secret_version" "smtp_url" {
  secret_id     = aws_secretsmanager_secret.smtp_url.id
  secret_string = var.smtp_url
}
