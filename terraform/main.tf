################################################################################
# Context and the pure-logic core (names, policies, definition, environment)
################################################################################

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  account_id       = data.aws_caller_identity.current.account_id
  region           = data.aws_region.current.region
  data_bucket_name = coalesce(var.data_bucket_name, "${var.name}-${local.account_id}-data")
  kms_key_arn      = var.create_kms_key ? aws_kms_key.this[0].arn : var.kms_key_arn
  lambda_package   = coalesce(var.lambda_package_path, "${path.module}/../dist/lambda.zip")

  names = module.core.names
}

module "core" {
  source = "./modules/core"

  name        = var.name
  partition   = data.aws_partition.current.partition
  region      = local.region
  account_id  = local.account_id
  kms_key_arn = local.kms_key_arn

  data_bucket_name = local.data_bucket_name
  tenants          = var.tenants
  tenant_limits    = var.tenant_limits
  results_prefix   = var.data_bucket_lifecycle.batch_results_prefix
  temporary_prefix = var.data_bucket_lifecycle.temporary_prefix

  # From the resource, so the functions sign accelerate URLs only once acceleration is on.
  s3_accelerated_buckets = aws_s3_bucket_accelerate_configuration.data[*].bucket

  state_machine_template_path = var.state_machine_template_path
  batch                       = var.batch

  jwt            = var.jwt
  modal_api_url  = var.modal_api_url
  api_endpoint   = aws_apigatewayv2_api.this.api_endpoint
  limits         = var.limits
  allowed_models = var.allowed_models
  default_speed  = var.default_speed
  gpu_deployment = var.gpu_deployment
  log_level      = var.log_level
}
