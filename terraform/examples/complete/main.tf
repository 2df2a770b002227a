# Every option: two tenants (one with its own existing bucket), tuned limits and batch settings,
# CORS, alarms to an SNS topic, and a shorter log retention.

provider "aws" {
  region = var.region
}

module "multitalk" {
  source = "../../"

  name = "multitalk-prod"
  tags = { Project = "multitalk", Environment = "prod" }

  tenants = {
    acme = {
      default_reference_image = "s3://multitalk-shared-assets/portraits/default.png"
    }
    globex = {
      read  = ["s3://${var.globex_bucket}/multitalk/inputs/", "shared/portraits/"]
      write = ["s3://${var.globex_bucket}/multitalk/outputs/"]
      # Over tenant_limits for this tenant only: fewer jobs at once, 10 GPU-hours a day.
      limits = { max_active = 4, gpu_seconds_per_day = 36000 }
    }
  }
  # Every tenant's defaults, and the GPU slots the batch items' fair share divides (the Modal
  # deploy's MULTITALK_MAX_GPU_CONTAINERS).
  tenant_limits = { max_active = 8, per_minute = 30, gpu_slots = 8 }

  jwt = {
    issuer       = var.jwt_issuer
    audience     = "multitalk-video-api"
    jwks_url     = var.jwt_jwks_url
    tenant_claim = "org_id"
    algorithms   = ["RS256"]
  }
  create_jwt_authorizer = true
  jwt_scopes = {
    read  = ["videos:read"]
    write = ["videos:write"]
  }

  modal_api_url = var.modal_api_url

  data_bucket_encryption = "aws:kms"
  data_bucket_lifecycle = {
    temporary_objects_days = 3
    batch_results_days     = 30
  }

  limits = {
    max_video_length_s    = 30
    job_deadline_s        = 5400
    presign_put_expires_s = 7200
  }

  lambda_reserved_concurrency = {
    api          = 100
    batch_submit = 20
  }

  api_throttling = {
    burst_limit = 200
    rate_limit  = 100
  }
  cors_allow_origins = ["https://studio.example.com"]

  batch = {
    max_concurrency              = 20
    tolerated_failure_percentage = 5
    heartbeat_seconds            = 600
    task_timeout_seconds         = 5400
  }
  batch_submit_max_concurrency = 10

  log_retention_days = 400
  alarm_actions      = [aws_sns_topic.alarms.arn]
}

################################################################################
# Supporting Resources
################################################################################

resource "aws_sns_topic" "alarms" {
  name              = "multitalk-prod-alarms"
  kms_master_key_id = "alias/aws/sns"
}
