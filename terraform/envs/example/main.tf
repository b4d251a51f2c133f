# Example root: one dedicated Ward region stack, composed from the modules.
# Copy this directory per environment/region and fill in terraform.tfvars.

locals {
  name = "${var.name}-${var.environment}"
  tags = { "ward:stack" = local.name }

  # Non-secret configuration of `ward serve`, wired from the modules' outputs.
  # Secrets (WARD_API_KEY, WARD_API_SECRET, WARD_DATABASE_URL, WARD_REDIS_URL)
  # are injected from Secrets Manager by the compute module. WARD_NODE_ID is left
  # unset on purpose: Ward derives a unique one per task (hostname + random suffix).
  #
  # Audit log: the checkpoint signing key is an Ed25519 seed Ward keeps in the
  # database wrapped by WARD_KMS_KEY_ID (no KMS signing key). Each signed
  # checkpoint is published to the Object Lock archive at
  # <prefix>checkpoints/<20-digit size> and <prefix>checkpoint (the latest);
  # the prefix comes from the archive module so the bucket policy, the task
  # role's IAM policy and the app agree on it.
  ward_environment = {
    WARD_BIND                  = "0.0.0.0:${var.container_port}"
    WARD_LOG_FORMAT            = "json"
    WARD_KEY_PROVIDER          = "aws-kms"
    WARD_KMS_KEY_ID            = module.kms.field_key_arn
    WARD_KMS_REGION            = var.region
    WARD_REDIS_CHANNEL         = "${local.name}:bus"
    WARD_AUDIT_S3_BUCKET       = module.audit_archive.bucket_name
    WARD_AUDIT_S3_PREFIX       = module.audit_archive.checkpoint_prefix
    WARD_AUDIT_S3_REGION       = var.region
    WARD_S3_ATTACHMENTS_BUCKET = module.storage.attachments_bucket_name
    WARD_S3_EXPORTS_BUCKET     = module.storage.exports_bucket_name
    AWS_REGION                 = var.region
  }
}

module "network" {
  source = "../../modules/network"

  name               = local.name
  cidr_block         = var.vpc_cidr
  azs                = var.azs
  single_nat_gateway = var.single_nat_gateway
  logs_kms_key_arn   = module.kms.logs_key_arn
  log_retention_days = var.log_retention_days
  tags               = local.tags
}

module "kms" {
  source = "../../modules/kms"

  name                   = local.name
  key_admin_arns         = var.key_admin_arns
  app_task_role_arn      = module.compute.task_role_arn
  app_execution_role_arn = module.compute.execution_role_arn
  break_glass_arns       = var.break_glass_role_arns
  tags                   = local.tags
}

module "storage" {
  source = "../../modules/storage"

  name        = local.name
  kms_key_arn = module.kms.storage_key_arn
  tags        = local.tags
}

module "audit_archive" {
  source = "../../modules/audit-archive"

  name              = local.name
  kms_key_arn       = module.kms.storage_key_arn
  access_log_bucket = module.storage.log_bucket_name
  writer_role_arn   = module.compute.task_role_arn
  reader_arns       = var.auditor_arns
  checkpoint_prefix = var.audit_archive_prefix
  retention_days    = var.audit_archive_retention_days
  tags              = local.tags
}

module "edge" {
  source = "../../modules/edge"

  name                    = local.name
  vpc_id                  = module.network.vpc_id
  vpc_cidr_block          = module.network.vpc_cidr_block
  public_subnet_ids       = module.network.public_subnet_ids
  certificate_arn         = var.certificate_arn
  container_port          = var.container_port
  allowed_ingress_cidrs   = var.allowed_ingress_cidrs
  access_log_bucket       = module.storage.log_bucket_name
  waf_rate_limit_per_5min = var.waf_rate_limit_per_5min
  logs_kms_key_arn        = module.kms.logs_key_arn
  log_retention_days      = var.log_retention_days
  tags                    = local.tags
}

module "database" {
  source = "../../modules/database"

  name                  = local.name
  vpc_id                = module.network.vpc_id
  data_subnet_ids       = module.network.data_subnet_ids
  app_security_group_id = module.compute.security_group_id
  kms_key_arn           = module.kms.database_key_arn
  secrets_kms_key_arn   = module.kms.secrets_key_arn
  logs_kms_key_arn      = module.kms.logs_key_arn
  instance_class        = var.db_instance_class
  log_retention_days    = var.log_retention_days
  tags                  = local.tags
}

module "cache" {
  source = "../../modules/cache"

  name                  = local.name
  vpc_id                = module.network.vpc_id
  data_subnet_ids       = module.network.data_subnet_ids
  app_security_group_id = module.compute.security_group_id
  kms_key_arn           = module.kms.database_key_arn
  logs_kms_key_arn      = module.kms.logs_key_arn
  node_type             = var.redis_node_type
  num_cache_clusters    = var.redis_num_cache_clusters
  log_retention_days    = var.log_retention_days
  tags                  = local.tags
}

module "compute" {
  source = "../../modules/compute"

  name                     = local.name
  vpc_id                   = module.network.vpc_id
  app_subnet_ids           = module.network.app_subnet_ids
  data_subnet_cidrs        = module.network.data_subnet_cidrs
  alb_security_group_id    = module.edge.security_group_id
  target_group_arn         = module.edge.target_group_arn
  container_port           = var.container_port
  image_tag                = var.image_tag
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  min_capacity             = var.min_tasks
  max_capacity             = var.max_tasks
  environment              = local.ward_environment
  database_url             = module.database.app_database_url
  redis_url                = module.cache.redis_url
  secrets_kms_key_arn      = module.kms.secrets_key_arn
  storage_kms_key_arn      = module.kms.storage_key_arn
  logs_kms_key_arn         = module.kms.logs_key_arn
  log_retention_days       = var.log_retention_days
  read_write_bucket_arns   = [module.storage.attachments_bucket_arn, module.storage.exports_bucket_arn]
  audit_archive_bucket_arn = module.audit_archive.bucket_arn
  audit_archive_prefix     = module.audit_archive.checkpoint_prefix
  tags                     = local.tags
}

module "monitoring" {
  source = "../../modules/monitoring"

  name                                   = local.name
  logs_kms_key_arn                       = module.kms.logs_key_arn
  backup_kms_key_arn                     = module.kms.backup_key_arn
  access_log_bucket                      = module.storage.log_bucket_name
  data_event_bucket_arns                 = [module.storage.attachments_bucket_arn, module.storage.exports_bucket_arn, module.audit_archive.bucket_arn]
  audit_archive_bucket_name              = module.audit_archive.bucket_name
  log_retention_days                     = var.log_retention_days
  alarm_emails                           = var.alarm_emails
  break_glass_role_arns                  = var.break_glass_role_arns
  hipaa_conformance_pack_template_s3_uri = var.hipaa_conformance_pack_template_s3_uri
  backup_copy_destination_vault_arn      = var.backup_copy_destination_vault_arn
  alb_arn_suffix                         = module.edge.alb_arn_suffix
  target_group_arn_suffix                = module.edge.target_group_arn_suffix
  ecs_cluster_name                       = module.compute.cluster_name
  ecs_service_name                       = module.compute.service_name
  db_instance_identifier                 = module.database.instance_identifier
  redis_replication_group_id             = module.cache.replication_group_id
  redis_num_cache_clusters               = var.redis_num_cache_clusters
  tags                                   = local.tags
}
