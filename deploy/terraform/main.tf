locals {
  name           = "boxoffice-${var.environment}"
  container_port = 8080
  roles          = toset(["api", "worker"])
  image          = "${aws_ecr_repository.engine.repository_url}:${var.image_tag}"

  # Plain settings of each role; every name is a variable of `boxoffice config --list`
  # (scripts/checks/40-deploy.sh fails on any other, and on a missing production one).
  environment = {
    api = {
      BOXOFFICE_ENV            = "production"
      ALLOW_SIMULATED_PAYMENTS = var.allow_simulated_payments
      ROLE                     = "api"
      BIND_ADDR                = "0.0.0.0:8080"
      LOG_FORMAT               = "json"
      DATABASE_MAX_CONNECTIONS = "16"
      CORS_ORIGINS             = var.public_base_url
      PAYMENT_WEBHOOK_URL      = "${var.public_base_url}/api/v1/payments/webhook"
      MAIL_OUTBOX_DIR          = "/tmp/outbox"
      S3_BUCKET                = aws_s3_bucket.receipts.bucket
      S3_REGION                = var.region
    }
    worker = {
      BOXOFFICE_ENV            = "production"
      ALLOW_SIMULATED_PAYMENTS = var.allow_simulated_payments
      ROLE                     = "worker"
      BIND_ADDR                = "0.0.0.0:8080"
      LOG_FORMAT               = "json"
      NOTIFICATION_WORKERS     = "4"
      MAIL_OUTBOX_DIR          = "/tmp/outbox"
      S3_BUCKET                = aws_s3_bucket.receipts.bucket
      S3_REGION                = var.region
    }
  }

  # Secrets of each role: ECS reads them from Secrets Manager at task start; no value is ever a
  # plain variable or visible in the task definition.
  secrets = {
    api = {
      DATABASE_URL           = aws_secretsmanager_secret.database_url.arn
      AMQP_URL               = aws_secretsmanager_secret.amqp_url.arn
      # rediss:// to ElastiCache (TLS in transit, AUTH token): limits and revocations shared by the API tasks.
      REDIS_URL              = aws_secretsmanager_secret.redis_url.arn
      JWT_SECRET             = aws_secretsmanager_secret.jwt.arn
      PAYMENT_WEBHOOK_SECRET = aws_secretsmanager_secret.webhook.arn
      # Writes for an event another task owns are forwarded there, to the NODE_ADDR the owner
      # registered: unset on ECS, the engine takes it from the task metadata endpoint (the
      # task's own private IP in awsvpc mode).
      CLUSTER_SECRET         = aws_secretsmanager_secret.cluster.arn
    }
    worker = {
      DATABASE_URL           = aws_secretsmanager_secret.database_url.arn
      AMQP_URL               = aws_secretsmanager_secret.amqp_url.arn
      JWT_SECRET             = aws_secretsmanager_secret.jwt.arn
      PAYMENT_WEBHOOK_SECRET = aws_secretsmanager_secret.webhook.arn
      SMTP_URL               = aws_secretsmanager_secret.smtp_url.arn
    }
  }

  task_size = {
    api    = { cpu = var.api_cpu, memory = var.api_memory }
    worker = { cpu = var.worker_cpu, memory = var.worker_memory }
  }
}

resource "aws_ecr_repository" "engine" {
  name                 = "boxoffice"
  image_tag_mutability = "IMMUTABLE"
  image_scanning_configuration {
    scan_on_push = true
  }
}

resource "aws_ecr_lifecycle_policy" "engine" {
  repository = aws_ecr_repository.engine.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the 30 most recent images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = 30
      }
      action = { type = "expire" }
    }]
  })
}

resource "aws_cloudwatch_log_group" "engine" {
  for_each          = local.roles
  name              = "/ecs/${local.name}/${each.key}"
  retention_in_days = var.log_retention_days
}
