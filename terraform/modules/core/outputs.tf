output "names" {
  description = "Names of every resource the root module creates."
  value = {
    functions     = { for k, f in local.functions : k => f.name }
    tables        = local.tables
    jobs_indexes  = local.jobs_indexes
    queues        = local.queues
    state_machine = local.state_machine_name
    secrets       = local.secrets
    roles         = local.roles
    log_groups    = local.log_groups
  }
}

output "metrics" {
  description = "Namespace and service dimension of the custom metrics the Lambda code emits."
  value       = local.metrics
}

output "handlers" {
  description = "Lambda handler (module.function) of each function."
  value       = { for k, f in local.functions : k => f.handler }
}

output "arns" {
  description = "ARNs derived from the names, for policies written before the resources exist."
  value = {
    tables        = local.table_arns
    queues        = local.queue_arns
    functions     = local.function_arns
    roles         = local.role_arns
    state_machine = local.state_machine_arn
    data_bucket   = local.data_bucket_arn
  }
}

output "queue_urls" {
  description = "SQS queue URLs (deterministic: `https://sqs.REGION.DOMAIN/ACCOUNT/NAME`)."
  value       = local.queue_urls
}

output "tenants_config" {
  description = "Tenants with every location resolved to s3://bucket/prefix/ (the TENANTS_CONFIG JSON)."
  value       = local.tenants_config
}

output "data_buckets" {
  description = "Every bucket a tenant location or the product itself uses."
  value       = local.data_buckets
}

output "policies" {
  description = "IAM policy JSON per role: api, callbacks, reconciler, batch_submit, state_machine, scheduler."
  value       = local.policies
}

output "assume_role_policies" {
  description = "Trust policy JSON per role."
  value       = local.assume_role_policies
}

output "data_bucket_policy" {
  description = "Bucket policy JSON for a data bucket the module creates."
  value       = local.data_bucket_policy
}

output "kms_key_policy" {
  description = "Key policy JSON for a KMS key the module creates."
  value       = local.kms_key_policy
}

output "state_machine_definition" {
  description = "The batch state machine's ASL, rendered from the aws/step_functions template."
  value       = local.state_machine_definition
}

output "lambda_environment" {
  description = "Environment variables per function (names from aws/lambda_proxy/config.py)."
  value       = local.lambda_environment

  precondition {
    # Lambda caps the whole environment at 4 KB: many tenants must move TENANTS_CONFIG elsewhere.
    condition     = alltrue([for env in values(local.lambda_environment) : length(join("", [for k, v in env : "${k}${v}"])) <= 4096])
    error_message = "The Lambda environment exceeds Lambda's 4 KB limit; list fewer tenant locations."
  }
}
