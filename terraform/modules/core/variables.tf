################################################################################
# Where the product is deployed
################################################################################

variable "name" {
  description = "Name prefix of every resource (lower case, digits and hyphens)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 characters of a-z, 0-9 and '-', starting with a letter."
  }
}

variable "partition" {
  description = "AWS partition (aws, aws-cn, aws-us-gov)."
  type        = string
  default     = "aws"

  validation {
    condition     = contains(["aws", "aws-cn", "aws-us-gov"], var.partition)
    error_message = "partition must be aws, aws-cn or aws-us-gov."
  }
}

variable "region" {
  description = "AWS region the product runs in."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must look like us-east-1."
  }
}

variable "account_id" {
  description = "The 12-digit AWS account id."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be 12 digits."
  }
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts tables, queues, secrets, logs and the data bucket."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", var.kms_key_arn))
    error_message = "kms_key_arn must be the ARN of a KMS key (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

################################################################################
# Data locations
################################################################################

variable "data_bucket_name" {
  description = "The bucket that holds relative tenant prefixes, batch results and temporary objects."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.data_bucket_name)) && !strcontains(var.data_bucket_name, "..")
    error_message = "data_bucket_name must be a valid S3 bucket name."
  }
}

variable "tenants" {
  description = <<-EOT
    Tenants (the value of the JWT tenant claim) and the S3 locations each may read inputs from and
    write outputs to. A location is `s3://bucket/prefix/` or a bare `prefix/` inside the data
    bucket; empty lists default to `tenants/<tenant>/inputs/` and `tenants/<tenant>/outputs/`.
    `limits` overrides `tenant_limits` for this tenant, field by field.
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

  validation {
    condition     = length(var.tenants) > 0 && alltrue([for t in keys(var.tenants) : can(regex("^[a-z0-9][a-z0-9_-]{0,62}$", t))])
    error_message = "tenants must name at least one tenant; names are 1-63 of a-z, 0-9, '_' and '-'."
  }

  validation {
    condition = alltrue(flatten([
      for t in values(var.tenants) : [
        for loc in concat(t.read, t.write) :
        can(regex("^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/)?([A-Za-z0-9!_.*'()-]+/)+$", loc)) && !strcontains(loc, "/../") && !strcontains(loc, "/./") && !startswith(loc, "../") && !startswith(loc, "./")
      ]
    ]))
    error_message = "each tenant location must be s3://bucket/prefix/ or prefix/ (ending in '/', no '.' or '..' segments, no bucket root)."
  }

  validation {
    condition = alltrue([
      for t in values(var.tenants) : length(t.read) <= 20 && length(t.write) <= 20
    ])
    error_message = "a tenant may list at most 20 read and 20 write locations."
  }

  validation {
    condition = alltrue([
      for t in values(var.tenants) :
      (t.limits.max_active == null ? true : t.limits.max_active >= 1 && t.limits.max_active <= 10000 && floor(t.limits.max_active) == t.limits.max_active) &&
      (t.limits.per_minute == null ? true : t.limits.per_minute >= 1 && t.limits.per_minute <= 100000 && floor(t.limits.per_minute) == t.limits.per_minute) &&
      (t.limits.gpu_seconds_per_day == null ? true : t.limits.gpu_seconds_per_day > 0)
    ])
    error_message = "a tenant's limits: max_active a whole number 1-10000, per_minute a whole number 1-100000, gpu_seconds_per_day more than 0."
  }
}

variable "results_prefix" {
  description = "Prefix in the data bucket where batch executions write their results."
  type        = string
  default     = "batch-results/"

  validation {
    # No quote: the prefix is spliced into States.Format('...') strings of the definition.
    condition     = can(regex("^([A-Za-z0-9!_.*()-]+/)+$", var.results_prefix))
    error_message = "results_prefix must be a non-empty prefix ending in '/' (letters, digits and !_.*()-)."
  }
}

variable "temporary_prefix" {
  description = "Prefix in the data bucket for short-lived objects (expired by the lifecycle rule)."
  type        = string
  default     = "tmp/"

  validation {
    condition     = can(regex("^([A-Za-z0-9!_.*'()-]+/)+$", var.temporary_prefix))
    error_message = "temporary_prefix must be a non-empty prefix ending in '/'."
  }
}

################################################################################
# Batch state machine
################################################################################

variable "state_machine_template_path" {
  description = "Path of the ASL template (owned by aws/step_functions); null uses the repository's."
  type        = string
  default     = null
}

variable "batch" {
  description = "Distributed Map settings: child concurrency, tolerated failures and per-item timeouts."
  type = object({
    max_concurrency              = optional(number, 10)
    tolerated_failure_percentage = optional(number, 10)
    heartbeat_seconds            = optional(number, 600)
    task_timeout_seconds         = optional(number, 3600)
  })
  default = {}

  validation {
    condition     = var.batch.max_concurrency >= 1 && var.batch.max_concurrency <= 1000 && floor(var.batch.max_concurrency) == var.batch.max_concurrency
    error_message = "batch.max_concurrency must be a whole number from 1 to 1000 (the Modal GPU budget)."
  }

  validation {
    condition     = var.batch.tolerated_failure_percentage >= 0 && var.batch.tolerated_failure_percentage <= 100
    error_message = "batch.tolerated_failure_percentage must be between 0 and 100."
  }

  validation {
    condition     = var.batch.heartbeat_seconds >= 60 && var.batch.heartbeat_seconds < var.batch.task_timeout_seconds && var.batch.task_timeout_seconds <= 86400
    error_message = "batch.heartbeat_seconds must be at least 60 and below batch.task_timeout_seconds, which is at most 86400."
  }
}

################################################################################
# What the Lambda functions are told (aws/lambda_proxy/config.py reads it)
################################################################################

variable "jwt" {
  description = "The identity provider: issuer, audience, JWKS URL, tenant claim and accepted algorithms."
  type = object({
    issuer       = string
    audience     = string
    jwks_url     = string
    tenant_claim = optional(string, "tenant_id")
    algorithms   = optional(list(string), ["RS256"])
  })

  validation {
    condition     = startswith(var.jwt.issuer, "https://") && startswith(var.jwt.jwks_url, "https://")
    error_message = "jwt.issuer and jwt.jwks_url must be https URLs."
  }

  validation {
    condition     = length(var.jwt.audience) > 0 && can(regex("^[A-Za-z0-9_:./-]{1,64}$", var.jwt.tenant_claim))
    error_message = "jwt.audience must not be empty and jwt.tenant_claim must be a simple claim name."
  }

  validation {
    condition     = length(var.jwt.algorithms) > 0 && length(setsubtract(var.jwt.algorithms, ["RS256", "ES256"])) == 0
    error_message = "jwt.algorithms accepts only the asymmetric RS256 and ES256."
  }
}

variable "modal_api_url" {
  description = "Base URL of the Modal internal API (the deployed web endpoint)."
  type        = string

  validation {
    condition     = can(regex("^https://[A-Za-z0-9.-]+(:[0-9]+)?(/.*)?$", var.modal_api_url))
    error_message = "modal_api_url must be an https URL."
  }
}

variable "api_endpoint" {
  description = "Public base URL of the HTTP API; the GPU side posts callbacks to `<it>/callbacks/<job_id>`."
  type        = string
}

variable "limits" {
  description = "Request limits and URL lifetimes enforced by the Lambda functions."
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

  validation {
    condition     = var.limits.max_video_length_s > 0 && var.limits.max_video_length_s <= 600
    error_message = "limits.max_video_length_s must be in (0, 600]."
  }

  validation {
    condition = alltrue([
      for v in [var.limits.presign_get_expires_s, var.limits.presign_put_expires_s] : v >= 60 && v <= 43200
    ])
    error_message = "pre-signed URL lifetimes must be 60-43200 s: URLs signed with role credentials die with them (at most 12 h)."
  }

  validation {
    condition     = var.limits.job_deadline_s >= 60 && var.limits.job_deadline_s <= 86400 && var.limits.job_ttl_days >= 1
    error_message = "limits.job_deadline_s must be 60-86400 and limits.job_ttl_days at least 1."
  }

  validation {
    condition     = var.limits.max_audio_bytes > 0 && var.limits.max_image_bytes > 0
    error_message = "size limits must be positive."
  }

  validation {
    condition     = var.limits.max_video_bytes > 0 && var.limits.max_video_bytes <= 8589934592
    error_message = "limits.max_video_bytes (the largest source video to dub) must be in (0, 8 GiB]."
  }

  validation {
    condition     = var.limits.max_video_s > 0 && var.limits.max_video_s <= 600
    error_message = "limits.max_video_s (the longest source video to dub) must be in (0, 600]."
  }
}

variable "tenant_limits" {
  description = "Per-tenant limits (defaults for tenants without their own), the GPU slots the fair share divides, and the Retry-After of a refusal for a slot."
  type = object({
    max_active          = optional(number, 10)
    per_minute          = optional(number, 60)
    gpu_seconds_per_day = optional(number)
    gpu_slots           = optional(number, 10)
    retry_after_s       = optional(number, 30)
  })
  default = {}

  validation {
    condition = (
      var.tenant_limits.max_active >= 1 && var.tenant_limits.max_active <= 10000 && floor(var.tenant_limits.max_active) == var.tenant_limits.max_active &&
      var.tenant_limits.per_minute >= 1 && var.tenant_limits.per_minute <= 100000 && floor(var.tenant_limits.per_minute) == var.tenant_limits.per_minute &&
      (var.tenant_limits.gpu_seconds_per_day == null ? true : var.tenant_limits.gpu_seconds_per_day > 0)
    )
    error_message = "tenant_limits.max_active must be a whole number 1-10000, per_minute a whole number 1-100000 and gpu_seconds_per_day (optional) more than 0."
  }

  validation {
    condition     = var.tenant_limits.gpu_slots >= 1 && var.tenant_limits.gpu_slots <= 10000 && floor(var.tenant_limits.gpu_slots) == var.tenant_limits.gpu_slots
    error_message = "tenant_limits.gpu_slots (Modal's max_containers) must be a whole number 1-10000."
  }

  validation {
    condition     = var.tenant_limits.retry_after_s >= 1 && var.tenant_limits.retry_after_s <= 3600 && floor(var.tenant_limits.retry_after_s) == var.tenant_limits.retry_after_s
    error_message = "tenant_limits.retry_after_s must be a whole number 1-3600."
  }
}

variable "allowed_models" {
  description = "Models callers may name in options.model: multitalk-14b, infinitetalk (needs the InfiniteTalk adapters on the Volume: download_weights --models), tiny and tiny-infinitetalk (noise, for tests)."
  type        = list(string)
  default     = ["multitalk-14b"]

  validation {
    condition     = length(var.allowed_models) > 0 && alltrue([for m in var.allowed_models : contains(["multitalk-14b", "infinitetalk", "tiny", "tiny-infinitetalk"], m)])
    error_message = "allowed_models must list at least one of multitalk-14b, infinitetalk, tiny, tiny-infinitetalk."
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

variable "s3_accelerated_buckets" {
  description = "Buckets with S3 Transfer Acceleration enabled: the Lambdas sign the GPU side's URLs for them through `<bucket>.s3-accelerate.amazonaws.com` (S3_ACCELERATED_BUCKETS)."
  type        = list(string)
  default     = []

  validation {
    # The accelerate endpoint is virtual-host only; its wildcard certificate covers no dotted name.
    condition     = alltrue([for b in var.s3_accelerated_buckets : can(regex("^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$", b))])
    error_message = "S3 Transfer Acceleration needs bucket names of 3-63 lower-case letters, digits and hyphens (no dots)."
  }
}

variable "log_level" {
  description = "Log level of the Lambda functions."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}
