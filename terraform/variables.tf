################################################################################
# General
################################################################################

variable "name" {
  description = "Name prefix of every resource (3-32 of a-z, 0-9 and '-')."
  type        = string
  default     = "multitalk"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 characters of a-z, 0-9 and '-', starting with a letter."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}

variable "deletion_protection" {
  description = "Protect the DynamoDB tables from deletion (turn off only for throw-away stacks)."
  type        = bool
  default     = true
}

################################################################################
# Tenants and identity
################################################################################

variable "tenants" {
  description = <<-EOT
    Tenants, keyed by the value of the JWT tenant claim, with the S3 locations each may read inputs
    from and write outputs to: `s3://bucket/prefix/` (an existing bucket) or a bare `prefix/` in the
    data bucket. Empty lists mean `tenants/<tenant>/inputs/` and `tenants/<tenant>/outputs/` in the
    data bucket. `default_reference_image` is used when a request names none. `limits` overrides
    `tenant_limits` for this tenant, field by field.
  EOT
  type = map(object({
    read                    = optional(list(string), [])
    write                   = optional(list(string), [])
    default_reference_image = optional(string)
    limits = optional(object({
      max_active          = optional(number)
      per_minute          = optional(number)
      gpu_seconds_per_day = optional(number)
    }), {})
  }))
}

variable "tenant_limits" {
  description = "Per-tenant limits for tenants that set none of their own: jobs queued or processing at once (max_active), submissions per UTC minute (per_minute), GPU-seconds of finished jobs per UTC day (gpu_seconds_per_day, null: none). gpu_slots is how many jobs the GPU side runs at once (Modal's max_containers), which the batch items' fair share divides; retry_after_s is the Retry-After of a refusal for a slot."
  type = object({
    max_active          = optional(number, 10)
    per_minute          = optional(number, 60)
    gpu_seconds_per_day = optional(number)
    gpu_slots           = optional(number, 10)
    retry_after_s       = optional(number, 30)
  })
  default = {}
}

variable "jwt" {
  description = "Identity provider: issuer (exact `iss`), audience, JWKS URL, tenant claim and algorithms the Lambda accepts."
  type = object({
    issuer       = string
    audience     = string
    jwks_url     = string
    tenant_claim = optional(string, "tenant_id")
    algorithms   = optional(list(string), ["RS256"])
  })
}

variable "create_jwt_authorizer" {
  description = "Put API Gateway's native JWT authorizer (RSA keys only) in front of the Lambda's own token check."
  type        = bool
  default     = true
}

variable "jwt_scopes" {
  description = "Scopes the native authorizer requires on read and write routes."
  type = object({
    read  = optional(list(string), ["videos:read"])
    write = optional(list(string), ["videos:write"])
  })
  default = {}

  validation {
    condition     = length(var.jwt_scopes.read) > 0 && length(var.jwt_scopes.write) > 0
    error_message = "jwt_scopes.read and jwt_scopes.write must each name at least one scope."
  }
}

################################################################################
# Modal (the GPU side: no AWS identity, only this URL and a proxy token)
################################################################################

variable "modal_api_url" {
  description = "Base URL of the deployed Modal internal API, e.g. `https://WORKSPACE--multitalk-video-api.modal.run`."
  type        = string
}

################################################################################
# Data bucket and encryption
################################################################################

variable "create_data_bucket" {
  description = "Create the data bucket; false references an existing bucket named by data_bucket_name."
  type        = bool
  default     = true
}

variable "data_bucket_name" {
  description = "Name of the data bucket (required when create_data_bucket is false; default `NAME-ACCOUNT-data`)."
  type        = string
  default     = null

  validation {
    condition     = var.data_bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.data_bucket_name))
    error_message = "data_bucket_name must be a valid S3 bucket name."
  }
}

variable "data_bucket_encryption" {
  description = "Default encryption of a created data bucket: aws:kms (the module's key) or AES256 (SSE-S3)."
  type        = string
  default     = "aws:kms"

  validation {
    condition     = contains(["aws:kms", "AES256"], var.data_bucket_encryption)
    error_message = "data_bucket_encryption must be aws:kms or AES256."
  }
}

variable "data_bucket_lifecycle" {
  description = "Days after which temporary objects, batch results, old versions and incomplete multipart uploads are removed."
  type = object({
    temporary_objects_days    = optional(number, 7)
    batch_results_days        = optional(number, 90)
    noncurrent_versions_days  = optional(number, 30)
    incomplete_multipart_days = optional(number, 1)
    temporary_prefix          = optional(string, "tmp/")
    batch_results_prefix      = optional(string, "batch-results/")
  })
  default = {}

  validation {
    condition = alltrue([
      for d in [var.data_bucket_lifecycle.temporary_objects_days, var.data_bucket_lifecycle.batch_results_days, var.data_bucket_lifecycle.noncurrent_versions_days, var.data_bucket_lifecycle.incomplete_multipart_days] :
      d >= 1 && floor(d) == d
    ])
    error_message = "lifecycle periods are whole numbers of days, at least 1."
  }
}

variable "access_log_bucket" {
  description = "Existing bucket that receives S3 server access logs of a created data bucket (null: none)."
  type        = string
  default     = null
}

variable "s3_transfer_acceleration" {
  description = <<-EOT
    Enable S3 Transfer Acceleration on the data bucket this module creates, and have the Lambdas
    pre-sign the GPU side's GET and PUT URLs for it through `<bucket>.s3-accelerate.amazonaws.com`
    (the bytes then enter AWS at the edge nearest to the GPU). Billed per GB transferred, on top of
    S3's own transfer prices, and only where AWS judges the accelerated transfer faster. Needs
    create_data_bucket and a bucket name without dots; tenants' own buckets stay regional.
  EOT
  type        = bool
  default     = false
}

variable "create_kms_key" {
  description = "Create a customer managed KMS key (rotated yearly) for tables, queues, secrets, logs and the bucket."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "ARN of an existing KMS key, used when create_kms_key is false."
  type        = string
  default     = null
}

################################################################################
# Lambda functions
################################################################################

variable "lambda_package_path" {
  description = "Zip built by scripts/package_lambdas.py (null: dist/lambda.zip at the repository root)."
  type        = string
  default     = null
}

variable "lambda_architecture" {
  description = "Instruction set of the Lambda functions; must match the wheels scripts/package_lambdas.py packed."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.lambda_architecture)
    error_message = "lambda_architecture must be x86_64 or arm64."
  }
}

variable "lambda_memory_size" {
  description = "Memory (MB) of each function."
  type = object({
    api          = optional(number, 512)
    callbacks    = optional(number, 512)
    reconciler   = optional(number, 256)
    batch_submit = optional(number, 512)
  })
  default = {}

  validation {
    condition     = alltrue([for m in values(var.lambda_memory_size) : m >= 128 && m <= 10240])
    error_message = "memory sizes must be 128-10240 MB."
  }
}

variable "lambda_timeout" {
  description = "Timeout (s) of each function; API-facing ones stay under API Gateway's 30 s."
  type = object({
    api          = optional(number, 29)
    callbacks    = optional(number, 29)
    reconciler   = optional(number, 300)
    batch_submit = optional(number, 60)
  })
  default = {}

  validation {
    condition     = var.lambda_timeout.api <= 29 && var.lambda_timeout.callbacks <= 29 && alltrue([for t in values(var.lambda_timeout) : t >= 3 && t <= 900])
    error_message = "timeouts are 3-900 s, and at most 29 s for api and callbacks (API Gateway ends requests at 30 s)."
  }
}

variable "lambda_reserved_concurrency" {
  description = "Reserved concurrency of each function: caps load on Modal and DynamoDB and protects the account."
  type = object({
    api          = optional(number, 50)
    callbacks    = optional(number, 20)
    reconciler   = optional(number, 1)
    batch_submit = optional(number, 10)
  })
  default = {}

  validation {
    condition     = alltrue([for c in values(var.lambda_reserved_concurrency) : c >= 1 && floor(c) == c])
    error_message = "reserved concurrency must be a whole number of at least 1."
  }
}

variable "default_speed" {
  description = "Speed profile of jobs that name none (options.speed): quality (the reference sampler), balanced (cached steps, bf16 VAE decode; about 2x faster) or turbo (4 distilled steps; needs the distillation LoRA on the Volume, else 10 steps)."
  type        = string
  default     = "quality"

  validation {
    condition     = contains(["quality", "balanced", "turbo"], var.default_speed)
    error_message = "default_speed must be quality, balanced or turbo."
  }
}

variable "gpu_deployment" {
  description = "The GPU side as the job estimates model it; must match the Modal deploy: kind = the first of MULTITALK_GPUS (H100, H200 or A100-80GB), gpus_per_container = MULTITALK_GPUS_PER_CONTAINER (1, 2, 4 or 8), warm_containers = MULTITALK_MIN_CONTAINERS."
  type = object({
    kind               = optional(string, "H100")
    gpus_per_container = optional(number, 1)
    warm_containers    = optional(number, 0)
  })
  default = {}

  validation {
    condition     = contains(["H100", "H200", "A100-80GB"], var.gpu_deployment.kind)
    error_message = "gpu_deployment.kind must be H100, H200 or A100-80GB (the kinds the estimates have figures for)."
  }

  validation {
    condition     = contains([1, 2, 4, 8], var.gpu_deployment.gpus_per_container)
    error_message = "gpu_deployment.gpus_per_container must be 1, 2, 4 or 8 (a split of the 40 attention heads)."
  }

  validation {
    condition     = var.gpu_deployment.warm_containers >= 0 && floor(var.gpu_deployment.warm_containers) == var.gpu_deployment.warm_containers
    error_message = "gpu_deployment.warm_containers must be a whole number of at least 0."
  }
}

variable "allowed_models" {
  description = "Models callers may name in options.model (see modules/core): multitalk-14b, infinitetalk (after downloading its adapters), tiny, tiny-infinitetalk."
  type        = list(string)
  default     = ["multitalk-14b"]
}

variable "log_level" {
  description = "Log level of the Lambda functions."
  type        = string
  default     = "INFO"
}

variable "log_retention_days" {
  description = "Retention of every log group (Lambda, API access logs, state machine)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, ... 3653)."
  }
}

variable "limits" {
  description = "Request limits and URL lifetimes the Lambda functions enforce (see modules/core)."
  type = object({
    max_video_length_s    = optional(number, 600)
    max_audio_bytes       = optional(number, 104857600)
    max_image_bytes       = optional(number, 20971520)
    max_video_bytes       = optional(number, 2147483648)
    max_video_s           = optional(number, 600)
    job_deadline_s        = optional(number, 3600)
    presign_get_expires_s = optional(number, 900)
    presign_put_expires_s = optional(number, 3600)
    job_ttl_days          = optional(number, 30)
  })
  default = {}
}

################################################################################
# API Gateway
################################################################################

variable "api_throttling" {
  description = "Stage-wide throttling of the HTTP API (HTTP APIs have no per-client quotas)."
  type = object({
    burst_limit = optional(number, 100)
    rate_limit  = optional(number, 50)
  })
  default = {}

  validation {
    condition     = var.api_throttling.burst_limit >= 1 && var.api_throttling.rate_limit > 0
    error_message = "api_throttling limits must be positive."
  }
}

variable "callback_throttling" {
  description = "Throttling of the unauthenticated (HMAC-signed) callback route."
  type = object({
    burst_limit = optional(number, 50)
    rate_limit  = optional(number, 25)
  })
  default = {}

  validation {
    condition     = var.callback_throttling.burst_limit >= 1 && var.callback_throttling.rate_limit > 0
    error_message = "callback_throttling limits must be positive."
  }
}

variable "cors_allow_origins" {
  description = "Browser origins allowed to call the API (empty: no CORS)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for o in var.cors_allow_origins : can(regex("^https://[^/*]+$", o))])
    error_message = "CORS origins must be https origins without wildcards or paths."
  }
}

################################################################################
# Batch (Step Functions + SQS)
################################################################################

variable "state_machine_template_path" {
  description = "ASL template of the batch state machine (null: aws/step_functions/batch.asl.json.tftpl)."
  type        = string
  default     = null
}

variable "batch" {
  description = "Distributed Map settings: child concurrency (the Modal GPU budget), tolerated failure percentage, per-item heartbeat and timeout."
  type = object({
    max_concurrency              = optional(number, 10)
    tolerated_failure_percentage = optional(number, 10)
    heartbeat_seconds            = optional(number, 600)
    task_timeout_seconds         = optional(number, 3600)
  })
  default = {}
}

variable "batch_submit_max_concurrency" {
  description = "Most concurrent batch-submit invocations the SQS event source starts (2-1000)."
  type        = number
  default     = 5

  validation {
    condition     = var.batch_submit_max_concurrency >= 2 && var.batch_submit_max_concurrency <= 1000
    error_message = "batch_submit_max_concurrency must be 2-1000 (the SQS event source's range)."
  }
}

variable "batch_submit_max_receive_count" {
  description = "Deliveries of a submit message before it moves to the dead-letter queue."
  type        = number
  default     = 3

  validation {
    condition     = var.batch_submit_max_receive_count >= 1 && var.batch_submit_max_receive_count <= 1000
    error_message = "batch_submit_max_receive_count must be 1-1000."
  }
}

variable "reconciler_schedule_expression" {
  description = "EventBridge Scheduler expression for the reconciler that settles overdue jobs."
  type        = string
  default     = "rate(5 minutes)"

  validation {
    condition     = can(regex("^(rate\\([0-9]+ (minute|minutes|hour|hours)\\)|cron\\(.+\\))$", var.reconciler_schedule_expression))
    error_message = "reconciler_schedule_expression must be rate(N minutes|hours) or cron(...)."
  }
}

################################################################################
# Monitoring
################################################################################

variable "create_alarms" {
  description = "Create CloudWatch alarms (failed jobs, latency, 5xx, function errors, state machine failures, DLQ depth, low GPU utilisation, job queue wait and end-to-end p90, tenant quota refusals)."
  type        = bool
  default     = true
}

variable "alarm_actions" {
  description = "ARNs notified when an alarm fires or recovers (e.g. an SNS topic)."
  type        = list(string)
  default     = []
}

variable "alarm_thresholds" {
  description = "Alarm thresholds. queue_wait_p90_s and end_to_end_p90_s: p90 over 15 minutes (twice in a row) of jobs' seconds from creation until a GPU started them, and until their final state; quota_refusals_per_15min: submissions refused with 429 tenant_quota_exceeded."
  type = object({
    failed_jobs_per_5min     = optional(number, 5)
    api_latency_p99_ms       = optional(number, 5000)
    api_5xx_per_5min         = optional(number, 5)
    function_errors_per_5m   = optional(number, 1)
    queue_wait_p90_s         = optional(number, 600)
    end_to_end_p90_s         = optional(number, 3600)
    quota_refusals_per_15min = optional(number, 50)
  })
  default = {}
}

variable "gpu_utilization_alarm" {
  description = "The low GPU utilisation alarm: it fires when the average of succeeded jobs' GpuUtilizationMean stays under threshold_percent for evaluation_periods periods of period_seconds (default: under 60 % for 3 x 15 min). Periods with no GPU job do not count against it."
  type = object({
    threshold_percent  = optional(number, 60)
    period_seconds     = optional(number, 900)
    evaluation_periods = optional(number, 3)
  })
  default = {}

  validation {
    condition     = var.gpu_utilization_alarm.threshold_percent > 0 && var.gpu_utilization_alarm.threshold_percent <= 100
    error_message = "gpu_utilization_alarm.threshold_percent must be more than 0 and at most 100."
  }

  validation {
    condition     = var.gpu_utilization_alarm.period_seconds >= 60 && var.gpu_utilization_alarm.period_seconds % 60 == 0
    error_message = "gpu_utilization_alarm.period_seconds must be a multiple of 60 (a job reports once, so shorter periods are mostly empty)."
  }

  validation {
    condition     = var.gpu_utilization_alarm.evaluation_periods >= 1 && var.gpu_utilization_alarm.period_seconds * var.gpu_utilization_alarm.evaluation_periods <= 86400
    error_message = "gpu_utilization_alarm.evaluation_periods must be at least 1, and all periods together at most a day (CloudWatch's limit)."
  }
}

variable "create_dashboard" {
  description = "Create a CloudWatch dashboard of the API, functions, batch, queues and GPU usage."
  type        = bool
  default     = true
}
