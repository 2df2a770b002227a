################################################################################
# Data bucket: created here, or an existing one referenced by name
################################################################################

resource "aws_s3_bucket" "data" {
  count = var.create_data_bucket ? 1 : 0

  #checkov:skip=CKV_AWS_144:Cross-region replication is a disaster-recovery choice of the operator (inputs are the callers' copies, outputs can be re-rendered).
  #checkov:skip=CKV2_AWS_62:No consumer of S3 event notifications exists; job state lives in DynamoDB and callbacks.
  #checkov:skip=CKV_AWS_18:Server access logging is enabled by aws_s3_bucket_logging.data when var.access_log_bucket names a log bucket (a log bucket cannot log to itself).
  bucket = local.data_bucket_name

  tags = var.tags
}

resource "aws_s3_bucket_public_access_block" "data" {
  count = var.create_data_bucket ? 1 : 0

  bucket                  = aws_s3_bucket.data[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "data" {
  count = var.create_data_bucket ? 1 : 0

  bucket = aws_s3_bucket.data[0].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "data" {
  count = var.create_data_bucket ? 1 : 0

  bucket = aws_s3_bucket.data[0].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "data" {
  count = var.create_data_bucket ? 1 : 0

  bucket = aws_s3_bucket.data[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.data_bucket_encryption
      kms_master_key_id = var.data_bucket_encryption == "aws:kms" ? local.kms_key_arn : null
    }
    # Fewer KMS calls (and cost) per object.
    bucket_key_enabled = var.data_bucket_encryption == "aws:kms"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "data" {
  count = var.create_data_bucket ? 1 : 0

  bucket = aws_s3_bucket.data[0].id

  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = var.data_bucket_lifecycle.incomplete_multipart_days
    }
  }

  rule {
    id     = "expire-temporary-objects"
    status = "Enabled"

    filter {
      prefix = var.data_bucket_lifecycle.temporary_prefix
    }

    expiration {
      days = var.data_bucket_lifecycle.temporary_objects_days
    }
  }

  rule {
    id     = "expire-batch-results"
    status = "Enabled"

    filter {
      prefix = var.data_bucket_lifecycle.batch_results_prefix
    }

    expiration {
      days = var.data_bucket_lifecycle.batch_results_days
    }
  }

  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.data_bucket_lifecycle.noncurrent_versions_days
    }
  }

  # The rules apply to versioned objects: enable versioning first.
  depends_on = [aws_s3_bucket_versioning.data]
}

resource "aws_s3_bucket_policy" "data" {
  count = var.create_data_bucket ? 1 : 0

  bucket = aws_s3_bucket.data[0].id
  policy = module.core.data_bucket_policy

  depends_on = [aws_s3_bucket_public_access_block.data]
}

resource "aws_s3_bucket_logging" "data" {
  count = var.create_data_bucket && var.access_log_bucket != null ? 1 : 0

  bucket        = aws_s3_bucket.data[0].id
  target_bucket = var.access_log_bucket
  target_prefix = "s3/${local.data_bucket_name}/"
}

# The GPU side's transfers go through the edge nearest to it (var.s3_transfer_acceleration).
resource "aws_s3_bucket_accelerate_configuration" "data" {
  count = var.s3_transfer_acceleration ? 1 : 0

  bucket = one(aws_s3_bucket.data[*].bucket)
  status = "Enabled"

  lifecycle {
    precondition {
      condition     = var.create_data_bucket
      error_message = "s3_transfer_acceleration applies to the data bucket this module creates (create_data_bucket = true); an existing bucket is referenced, never managed."
    }

    precondition {
      condition     = !strcontains(local.data_bucket_name, ".")
      error_message = "S3 Transfer Acceleration cannot serve a bucket name with dots (its endpoint is virtual-host only): choose a data_bucket_name without them."
    }
  }
}
