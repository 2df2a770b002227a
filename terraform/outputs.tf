################################################################################
# API
################################################################################

output "api_endpoint" {
  description = "Base URL of the HTTP API (POST /generate-video, GET /jobs/{job_id}, ...)."
  value       = aws_apigatewayv2_api.this.api_endpoint
}

output "api_id" {
  description = "ID of the HTTP API."
  value       = aws_apigatewayv2_api.this.id
}

output "callback_url_template" {
  description = "URL the GPU side posts signed callbacks to."
  value       = "${aws_apigatewayv2_api.this.api_endpoint}/callbacks/{job_id}"
}

################################################################################
# Batch
################################################################################

output "state_machine_arn" {
  description = "ARN of the batch state machine (start executions with {\"input\": {...}})."
  value       = aws_sfn_state_machine.batch.arn
}

output "batch_submit_queue_url" {
  description = "URL of the batch submit queue."
  value       = aws_sqs_queue.batch_submit.url
}

output "dead_letter_queue_urls" {
  description = "URLs of the dead-letter queues (batch submit, async invocations and schedules)."
  value = {
    batch_submit = aws_sqs_queue.batch_submit_dlq.url
    async        = aws_sqs_queue.async_dlq.url
  }
}

################################################################################
# Data
################################################################################

output "data_bucket_name" {
  description = "Name of the data bucket (created or referenced)."
  value       = var.create_data_bucket ? aws_s3_bucket.data[0].id : local.data_bucket_name

  # Checked here, not on the bucket: a resource with count = 0 never evaluates its conditions.
  precondition {
    condition     = var.create_data_bucket || var.data_bucket_name != null
    error_message = "Set data_bucket_name to reference an existing bucket when create_data_bucket is false."
  }
}

output "bucket_names" {
  description = "Every bucket the tenants' locations and the product use."
  value       = module.core.data_buckets
}

output "tenants" {
  description = "Each tenant's read and write locations, resolved to s3://bucket/prefix/."
  value       = module.core.tenants_config
}

output "table_names" {
  description = "DynamoDB tables: jobs and idempotency."
  value = {
    jobs        = aws_dynamodb_table.jobs.name
    idempotency = aws_dynamodb_table.idempotency.name
  }
}

output "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the product's data."
  value       = local.kms_key_arn

  precondition {
    condition     = var.create_kms_key || var.kms_key_arn != null
    error_message = "Set kms_key_arn when create_kms_key is false."
  }
}

################################################################################
# Secrets (put the values with `aws secretsmanager put-secret-value`, see README)
################################################################################

output "modal_proxy_token_secret_arn" {
  description = "Secret holding the Modal proxy token {\"token_id\", \"token_secret\"}."
  value       = aws_secretsmanager_secret.modal_proxy_token.arn
}

output "tenant_webhook_secrets_secret_arn" {
  description = "Secret holding the tenants' webhook signing secrets `{\"TENANT\": \"whsec_...\"}`."
  value       = aws_secretsmanager_secret.tenant_webhook_secrets.arn
}

################################################################################
# Functions
################################################################################

output "function_names" {
  description = "Lambda function names by role: api, callbacks, reconciler, batch_submit."
  value       = { for k, f in aws_lambda_function.this : k => f.function_name }
}

output "function_role_arns" {
  description = "IAM role ARN of each function."
  value       = { for k, r in aws_iam_role.lambda : k => r.arn }
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard (null when not created)."
  value       = try(aws_cloudwatch_dashboard.this[0].dashboard_name, null)
}
