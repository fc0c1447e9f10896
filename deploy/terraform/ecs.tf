# ECS on Fargate: one task definition and one service per role (api, worker), both running the
# one engine image with ROLE set.

resource "aws_ecs_cluster" "main" {
  name = local.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

data "aws_iam_policy_document" "ecs_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# Used by ECS itself to pull the image, read the secrets and write the logs.
resource "aws_iam_role" "execution" {
  name               = "${local.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "read_secrets" {
  statement {
    actions = ["secretsmanager:GetSecretValue"]
    resources = [
      aws_secretsmanager_secret.database_url.arn,
      aws_secretsmanager_secret.amqp_url.arn,
      aws_secretsmanager_secret.redis_url.arn,
      aws_secretsmanager_secret.jwt.arn,
      aws_secretsmanager_secret.webhook.arn,
      aws_secretsmanager_secret.cluster.arn,
      aws_secretsmanager_secret.smtp_url.arn,
    ]
  }
}

resource "aws_iam_role_policy" "read_secrets" {
  name   = "read-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.read_secrets.json
}

# The engine's own role: it reads and writes receipts in their bucket, nothing else.
resource "aws_iam_role" "task" {
  name               = "${local.name}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
}

data "aws_iam_policy_document" "receipts" {
  statement {
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.receipts.arn}/receipts/*"]
  }
}

resource "aws_iam_role_policy" "receipts" {
  name   = "receipts"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.receipts.json
}

resource "aws_ecs_task_definition" "engine" {
  for_each                 = local.roles
  family                   = "${local.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = local.task_size[each.key].cpu
  memory                   = local.task_size[each.key].memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }
  container_definitions = jsonencode([{
    name                   = "boxoffice"
    image                  = local.image
    essential              = true
    command                = ["serve"]
    readonlyRootFilesystem = true
    user                   = "65532:65532"
    portMappings           = [{ containerPort = local.container_port, protocol = "tcp" }]
    environment            = [for k, v in local.environment[each.key] : { name = k, value = v }]
    secrets                = [for k, v in local.secrets[each.key] : { name = k, valueFrom = v }]
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    # Longer than the engine's drain (in-flight requests up to 30 s, then actors 10 s).
    stopTimeout = 60
    healthCheck = {
      command     = ["/app/boxoffice", "healthcheck"]
      interval    = 10
      timeout     = 3
      retries     = 3
      startPeriod = 20
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.engine[each.key].name
        awslogs-region        = var.region
        awslogs-stream-prefix = each.key
      }
    }
  }])
  volume {
    name = "tmp"
  }
}

resource "aws_ecs_service" "engine" {
  for_each                           = local.roles
  name                               = "${local.name}-${each.key}"
  cluster                            = aws_ecs_cluster.main.id
  task_definition                    = aws_ecs_task_definition.engine[each.key].arn
  desired_count                      = each.key == "api" ? var.api_desired_count : var.worker_desired_count
  launch_type                        = "FARGATE"
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = each.key == "api" ? 30 : null
  enable_execute_command             = false
  network_configuration {
    subnets          = aws_subnet.private[*].id
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  dynamic "load_balancer" {
    for_each = each.key == "api" ? [1] : []
    content {
      target_group_arn = aws_lb_target_group.api.arn
      container_name   = "boxoffice"
      container_port   = local.container_port
    }
  }
  lifecycle {
    ignore_changes = [desired_count]
  }
  depends_on = [aws_lb_listener.https]
}

resource "aws_appautoscaling_target" "engine" {
  for_each           = local.roles
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.engine[each.key].name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = each.key == "api" ? var.api_min_count : 1
  max_capacity       = each.key == "api" ? var.api_max_count : var.worker_max_count
}

resource "aws_appautoscaling_policy" "cpu" {
  for_each           = local.roles
  name               = "${local.name}-${each.key}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.engine[each.key].service_namespace
  resource_id        = aws_appautoscaling_target.engine[each.key].resource_id
  scalable_dimension = aws_appautoscaling_target.engine[each.key].scalable_dimension
  target_tracking_scaling_policy_configuration {
    target_value = each.key == "api" ? 65 : 70
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
    # Scaling in moves event ownership between tasks: slowly.
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
  }
}
