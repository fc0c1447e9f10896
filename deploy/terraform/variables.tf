variable "region" {
  description = "AWS region of the whole stack."
  type        = string
  default     = "eu-west-1"
}

variable "environment" {
  description = "Name of this deployment (prefix of every resource name), e.g. prod or staging."
  type        = string
  default     = "prod"
}

variable "vpc_cidr" {
  description = "Address range of the VPC; split into one public and one private /20 per availability zone."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Availability zones to spread subnets, tasks and data stores over (at least two)."
  type        = list(string)
  default     = ["eu-west-1a", "eu-west-1b"]
}

variable "image_tag" {
  description = "Tag of the engine image in ECR: the version in Cargo.toml, which is what the build tags (deploy/docker/Dockerfile)."
  type        = string
  default     = "0.1.0"
}

variable "certificate_arn" {
  description = "ACM certificate of the public host name, for the ALB's HTTPS listener."
  type        = string
}

variable "public_base_url" {
  description = "Origin the web app is served from (CORS_ORIGINS), e.g. https://tickets.example.com."
  type        = string
}

variable "api_desired_count" {
  description = "API tasks started; autoscaling keeps the count between api_min_count and api_max_count."
  type        = number
  default     = 3
}

variable "api_min_count" {
  description = "Fewest API tasks autoscaling leaves running."
  type        = number
  default     = 2
}

variable "api_max_count" {
  description = "Most API tasks autoscaling starts."
  type        = number
  default     = 12
}

variable "worker_desired_count" {
  description = "Notification worker tasks started (autoscaled between 1 and worker_max_count)."
  type        = number
  default     = 2
}

variable "worker_max_count" {
  description = "Most notification worker tasks autoscaling starts."
  type        = number
  default     = 6
}

variable "api_cpu" {
  description = "CPU units of one API task (1024 = one vCPU)."
  type        = number
  default     = 1024
}

variable "api_memory" {
  description = "Memory of one API task, in MiB."
  type        = number
  default     = 2048
}

variable "worker_cpu" {
  description = "CPU units of one worker task."
  type        = number
  default     = 256
}

variable "worker_memory" {
  description = "Memory of one worker task, in MiB."
  type        = number
  default     = 512
}

variable "db_instance_class" {
  description = "RDS instance class of the PostgreSQL database."
  type        = string
  default     = "db.r6g.large"
}

variable "db_allocated_storage" {
  description = "Storage of the database, in GiB (grows automatically up to four times this)."
  type        = number
  default     = 100
}

variable "db_multi_az" {
  description = "Whether RDS keeps a synchronous standby in a second zone."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Protects the database from deletion (turn off only to tear a test stack down)."
  type        = bool
  default     = true
}

variable "redis_node_type" {
  description = "ElastiCache node type of the Redis replication group."
  type        = string
  default     = "cache.r7g.large"
}

variable "mq_instance_type" {
  description = "Amazon MQ instance type of the RabbitMQ broker."
  type        = string
  default     = "mq.m5.large"
}

variable "mq_deployment_mode" {
  description = "SINGLE_INSTANCE or CLUSTER_MULTI_AZ for the RabbitMQ broker."
  type        = string
  default     = "CLUSTER_MULTI_AZ"
}

variable "smtp_url" {
  description = "Mail relay of the notification workers (smtps://user:pass@host or smtp://host:587?tls=required); stored in Secrets Manager."
  type        = string
  sensitive   = true
}

variable "log_retention_days" {
  description = "How long CloudWatch keeps the engine's logs."
  type        = number
  default     = 30
}

variable "allow_simulated_payments" {
  description = "\"true\" lets production run the built-in simulated payment provider (approves test tokens, takes no money): for a staging stack only. The engine has no other provider yet, so \"false\" keeps it from starting."
  type        = string
  default     = "true"
}
