################################################################################
# DynamoDB: jobs (TTL, tenant index, sparse active and follow-up indexes), idempotency records and
# per-tenant usage counters
################################################################################

resource "aws_dynamodb_table" "jobs" {
  name                        = local.names.tables.jobs
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "job_id"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "job_id"
    type = "S"
  }

  attribute {
    name = "tenant_id"
    type = "S"
  }

  attribute {
    name = "created_at"
    type = "S"
  }

  # Set to "1" only while a job is unsettled, so the index holds only what the reconciler scans.
  attribute {
    name = "active"
    type = "S"
  }

  attribute {
    name = "deadline"
    type = "S"
  }

  # Set to "1" on a final job while Step Functions or the caller's webhook is still owed its
  # notification (an outbox the reconciler drains); removed once both were told.
  attribute {
    name = "followup_pending"
    type = "S"
  }

  attribute {
    name = "followup_at"
    type = "S"
  }

  global_secondary_index {
    name            = local.names.jobs_indexes.tenant
    hash_key        = "tenant_id"
    range_key       = "created_at"
    projection_type = "ALL"
  }

  global_secondary_index {
    name            = local.names.jobs_indexes.active
    hash_key        = "active"
    range_key       = "deadline"
    projection_type = "ALL"
  }

  global_secondary_index {
    name            = local.names.jobs_indexes.followups
    hash_key        = "followup_pending"
    range_key       = "followup_at"
    projection_type = "ALL"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = local.kms_key_arn
  }

  tags = var.tags
}

resource "aws_dynamodb_table" "idempotency" {
  name                        = local.names.tables.idempotency
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "id"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "id"
    type = "S"
  }

  # Powertools idempotency records carry their own expiry.
  ttl {
    attribute_name = "expiration"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = local.kms_key_arn
  }

  tags = var.tags
}

# Per-tenant counters and job leases (aws/lambda_proxy/tenants/usage_table.py), changed only in
# transactions whose conditions are the limits. Minute and day windows expire by TTL.
resource "aws_dynamodb_table" "usage" {
  name                        = local.names.tables.usage
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = local.kms_key_arn
  }

  tags = var.tags
}
