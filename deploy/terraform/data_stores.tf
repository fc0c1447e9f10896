# PostgreSQL (TLS required by the server), Redis (TLS in transit, AUTH token) and RabbitMQ
# (Amazon MQ speaks AMQPS only), all in the private subnets.

resource "random_password" "db" {
  length  = 40
  special = false
}

resource "random_password" "mq" {
  length  = 40
  special = false
}

resource "random_password" "redis" {
  length  = 64
  special = false
}

resource "aws_db_subnet_group" "main" {
  name       = "${local.name}-db"
  subnet_ids = aws_subnet.private[*].id
}

resource "aws_db_parameter_group" "postgres" {
  name   = "${local.name}-postgres16"
  family = "postgres16"
  # Refuse every connection that is not TLS.
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
}

resource "aws_db_instance" "main" {
  identifier                      = "${local.name}-db"
  engine                          = "postgres"
  engine_version                  = "16"
  instance_class                  = var.db_instance_class
  allocated_storage               = var.db_allocated_storage
  max_allocated_storage           = var.db_allocated_storage * 4
  storage_encrypted               = true
  db_name                         = "boxoffice"
  username                        = "boxoffice"
  password                        = random_password.db.result
  db_subnet_group_name            = aws_db_subnet_group.main.name
  vpc_security_group_ids          = [aws_security_group.db.id]
  parameter_group_name            = aws_db_parameter_group.postgres.name
  multi_az                        = var.db_multi_az
  publicly_accessible             = false
  backup_retention_period         = 14
  deletion_protection             = var.deletion_protection
  skip_final_snapshot             = false
  final_snapshot_identifier       = "${local.name}-db-final"
  performance_insights_enabled    = true
  enabled_cloudwatch_logs_exports = ["postgresql"]
}

resource "aws_elasticache_subnet_group" "main" {
  name       = "${local.name}-redis"
  subnet_ids = aws_subnet.private[*].id
}

resource "aws_elasticache_replication_group" "main" {
  replication_group_id       = "${local.name}-redis"
  description                = "boxoffice shared state"
  engine                     = "redis"
  engine_version             = "7.1"
  node_type                  = var.redis_node_type
  num_cache_clusters         = length(var.availability_zones)
  automatic_failover_enabled = true
  multi_az_enabled           = true
  subnet_group_name          = aws_elasticache_subnet_group.main.name
  security_group_ids         = [aws_security_group.redis.id]
  transit_encryption_enabled = true
  at_rest_encryption_enabled = true
  auth_token                 = random_password.redis.result
  port                       = 6379
}

resource "aws_mq_broker" "main" {
  broker_name                = "${local.name}-mq"
  engine_type                = "RabbitMQ"
  engine_version             = "3.13"
  host_instance_type         = var.mq_instance_type
  deployment_mode            = var.mq_deployment_mode
  publicly_accessible        = false
  subnet_ids                 = var.mq_deployment_mode == "SINGLE_INSTANCE" ? [aws_subnet.private[0].id] : aws_subnet.private[*].id
  security_groups            = [aws_security_group.mq.id]
  auto_minor_version_upgrade = true
  user {
    username = "boxoffice"
    password = random_password.mq.result
  }
  logs {
    general = true
  }
}
