locals {
  arn_prefix = "arn:${var.partition}"
  regional   = "${var.region}:${var.account_id}"

  ################################################################################
  # Names: one place decides them, so policies can name ARNs before anything exists
  ################################################################################

  functions = {
    api          = { name = "${var.name}-api", handler = "aws.lambda_proxy.handlers.api.handler" }
    callbacks    = { name = "${var.name}-callbacks", handler = "aws.lambda_proxy.handlers.callbacks.handler" }
    reconciler   = { name = "${var.name}-reconciler", handler = "aws.lambda_proxy.handlers.reconciler.handler" }
    batch_submit = { name = "${var.name}-batch-submit", handler = "aws.step_functions.handlers.batch_submit.handler" }
  }

  tables = {
    jobs        = "${var.name}-jobs"
    idempotency = "${var.name}-idempotency"
    usage       = "${var.name}-usage"
  }
  # Index names the Lambda code queries (aws/lambda_proxy/config.py defaults).
  jobs_indexes = {
    tenant    = "by-tenant"
    active    = "active-by-deadline"
    followups = "followups"
  }

  queues = {
    batch_submit     = "${var.name}-batch-submit"
    batch_submit_dlq = "${var.name}-batch-submit-dlq"
    # Failed asynchronous invocations (the reconciler) and undeliverable schedules land here.
    async_dlq = "${var.name}-async-dlq"
  }

  state_machine_name = "${var.name}-batch"

  # Powertools metrics of the Lambda code (namespace and the "service" dimension).
  metrics = {
    namespace = "MultiTalkVideoApi"
    service   = "multitalk-video-api"
  }

  secrets = {
    modal_proxy_token      = "${var.name}/modal-proxy-token"
    tenant_webhook_secrets = "${var.name}/tenant-webhook-secrets"
  }

  roles = merge(
    { for k, f in local.functions : k => f.name },
    {
      state_machine = "${var.name}-state-machine"
      scheduler     = "${var.name}-scheduler"
    },
  )

  log_groups = merge(
    { for k, f in local.functions : k => "/aws/lambda/${f.name}" },
    {
      api           = "/aws/apigateway/${var.name}"
      state_machine = "/aws/vendedlogs/states/${local.state_machine_name}"
    },
  )
  # Lambda's own log group name must be /aws/lambda/<function>; the API's access logs get theirs.
  lambda_log_groups = { for k, f in local.functions : k => "/aws/lambda/${f.name}" }

  ################################################################################
  # ARNs built from the names above
  ################################################################################

  table_arns = { for k, n in local.tables : k => "${local.arn_prefix}:dynamodb:${local.regional}:table/${n}" }
  queue_arns = { for k, n in local.queues : k => "${local.arn_prefix}:sqs:${local.regional}:${n}" }
  queue_urls = {
    for k, n in local.queues : k => "https://sqs.${var.region}.${var.partition == "aws-cn" ? "amazonaws.com.cn" : "amazonaws.com"}/${var.account_id}/${n}"
  }
  function_arns = { for k, f in local.functions : k => "${local.arn_prefix}:lambda:${local.regional}:function:${f.name}" }
  role_arns     = { for k, n in local.roles : k => "${local.arn_prefix}:iam::${var.account_id}:role/${n}" }
  # Secrets Manager appends six random characters to every secret ARN.
  secret_arn_patterns = { for k, n in local.secrets : k => "${local.arn_prefix}:secretsmanager:${local.regional}:secret:${n}-??????" }

  state_machine_arn = "${local.arn_prefix}:states:${local.regional}:stateMachine:${local.state_machine_name}"
  # Child executions a Distributed Map starts are named <state machine>/<map run>:<id>.
  child_execution_arn = "${local.arn_prefix}:states:${local.regional}:execution:${local.state_machine_name}/*"

  # Task tokens belong to the execution that waits: the parent, or a Distributed Map child
  # (whose state machine ARN is <parent ARN>/<map run label>).
  task_token_arns = [local.state_machine_arn, "${local.state_machine_arn}/*"]

  data_bucket_arn = "${local.arn_prefix}:s3:::${var.data_bucket_name}"

  ################################################################################
  # Tenants: every location resolved to s3://bucket/prefix/
  ################################################################################

  tenant_locations = {
    for tenant, t in var.tenants : tenant => {
      read = [
        for loc in(length(t.read) > 0 ? t.read : ["tenants/${tenant}/inputs/"]) :
        startswith(loc, "s3://") ? loc : "s3://${var.data_bucket_name}/${loc}"
      ]
      write = [
        for loc in(length(t.write) > 0 ? t.write : ["tenants/${tenant}/outputs/"]) :
        startswith(loc, "s3://") ? loc : "s3://${var.data_bucket_name}/${loc}"
      ]
    }
  }

  # Limits (TenantLimits in aws/lambda_proxy/tenants/limits.py): the defaults, and per tenant
  # the defaults with the tenant's own fields over them; no gpu_seconds_per_day is no budget.
  tenant_limits_default = {
    for k, v in {
      max_active          = var.tenant_limits.max_active
      per_minute          = var.tenant_limits.per_minute
      gpu_seconds_per_day = var.tenant_limits.gpu_seconds_per_day
    } : k => v if v != null
  }
  # A batch item waiting for its tenant's slot comes back within half a heartbeat, so its task
  # never times out while it waits (SQS delays a message at most 900 s).
  batch_wait_max_s = min(900, floor(var.batch.heartbeat_seconds / 2))
  tenant_limits = {
    for tenant, t in var.tenants : tenant => merge(
      local.tenant_limits_default,
      { for k, v in t.limits : k => v if v != null },
    )
  }

  # The JSON the Lambda code parses (TenantConfig in aws/lambda_proxy/config.py).
  tenants_config = {
    for tenant, t in var.tenants : tenant => merge(
      local.tenant_locations[tenant],
      t.default_reference_image == null ? {} : { default_reference_image = t.default_reference_image },
      { limits = local.tenant_limits[tenant] },
    )
  }

  # Flat list of { bucket, prefix } per access kind, deduplicated across tenants.
  read_locations = distinct(flatten([
    for t in values(local.tenant_locations) : [
      for loc in t.read : {
        bucket = regex("^s3://([^/]+)/", loc)[0]
        prefix = regex("^s3://[^/]+/(.*)$", loc)[0]
      }
    ]
  ]))
  write_locations = distinct(flatten([
    for t in values(local.tenant_locations) : [
      for loc in t.write : {
        bucket = regex("^s3://([^/]+)/", loc)[0]
        prefix = regex("^s3://[^/]+/(.*)$", loc)[0]
      }
    ]
  ]))
  data_buckets = sort(distinct(concat(
    [var.data_bucket_name],
    [for l in concat(local.read_locations, local.write_locations) : l.bucket],
  )))

  read_object_arns  = sort([for l in local.read_locations : "${local.arn_prefix}:s3:::${l.bucket}/${l.prefix}*"])
  write_object_arns = sort([for l in local.write_locations : "${local.arn_prefix}:s3:::${l.bucket}/${l.prefix}*"])
  # ListBucket is granted per bucket, narrowed to the prefixes the tenants own.
  list_prefixes_by_bucket = {
    for b in local.data_buckets : b => sort(distinct([
      for l in concat(local.read_locations, local.write_locations) : "${l.prefix}*" if l.bucket == b
    ]))
  }
  output_prefixes_by_bucket = {
    for b in distinct([for l in local.write_locations : l.bucket]) : b => sort(distinct([
      for l in local.write_locations : "${l.prefix}*" if l.bucket == b
    ]))
  }
  results_object_arn = "${local.data_bucket_arn}/${var.results_prefix}*"

  ################################################################################
  # Step Functions definition (template owned by aws/step_functions)
  ################################################################################

  state_machine_template = coalesce(var.state_machine_template_path, "${path.module}/../../../aws/step_functions/batch.asl.json.tftpl")
  # null until the template exists; the root module's state machine refuses a null definition
  # with a precondition, so a missing template never reaches AWS.
  state_machine_definition = !fileexists(local.state_machine_template) ? null : templatefile(local.state_machine_template, {
    submit_queue_url             = local.queue_urls.batch_submit
    results_bucket               = var.data_bucket_name
    results_prefix               = var.results_prefix
    max_concurrency              = var.batch.max_concurrency
    tolerated_failure_percentage = var.batch.tolerated_failure_percentage
    heartbeat_seconds            = var.batch.heartbeat_seconds
    task_timeout_seconds         = var.batch.task_timeout_seconds
  })

  ################################################################################
  # Lambda environment (names: aws/lambda_proxy/config.py, the upper-cased Settings fields)
  ################################################################################

  lambda_environment_common = {
    JOBS_TABLE_NAME              = local.tables.jobs
    JOBS_TENANT_INDEX            = local.jobs_indexes.tenant
    JOBS_ACTIVE_INDEX            = local.jobs_indexes.active
    JOBS_FOLLOWUP_INDEX          = local.jobs_indexes.followups
    IDEMPOTENCY_TABLE_NAME       = local.tables.idempotency
    USAGE_TABLE_NAME             = local.tables.usage
    TENANT_LIMITS_DEFAULT        = jsonencode(local.tenant_limits_default)
    GPU_SLOTS                    = tostring(var.tenant_limits.gpu_slots)
    QUOTA_RETRY_AFTER_S          = tostring(var.tenant_limits.retry_after_s)
    BATCH_WAIT_MAX_S             = tostring(local.batch_wait_max_s)
    JOB_TTL_DAYS                 = tostring(var.limits.job_ttl_days)
    TENANTS_CONFIG               = jsonencode(local.tenants_config)
    TENANT_WEBHOOK_SECRETS_ARN   = local.secret_arn_patterns.tenant_webhook_secrets
    JWT_ISSUER                   = var.jwt.issuer
    JWT_AUDIENCE                 = var.jwt.audience
    JWT_JWKS_URL                 = var.jwt.jwks_url
    JWT_TENANT_CLAIM             = var.jwt.tenant_claim
    JWT_ALGORITHMS               = join(",", var.jwt.algorithms)
    MODAL_API_URL                = var.modal_api_url
    MODAL_PROXY_TOKEN_SECRET_ARN = local.secret_arn_patterns.modal_proxy_token
    CALLBACK_BASE_URL            = trimsuffix(var.api_endpoint, "/")
    PRESIGN_GET_EXPIRES_S        = tostring(var.limits.presign_get_expires_s)
    PRESIGN_PUT_EXPIRES_S        = tostring(var.limits.presign_put_expires_s)
    S3_ACCELERATED_BUCKETS       = join(",", var.s3_accelerated_buckets)
    MAX_AUDIO_BYTES              = tostring(var.limits.max_audio_bytes)
    MAX_IMAGE_BYTES              = tostring(var.limits.max_image_bytes)
    MAX_VIDEO_LENGTH_S           = tostring(var.limits.max_video_length_s)
    MAX_VIDEO_BYTES              = tostring(var.limits.max_video_bytes)
    MAX_VIDEO_S                  = tostring(var.limits.max_video_s)
    ALLOWED_MODELS               = join(",", var.allowed_models)
    JOB_DEADLINE_S               = tostring(var.limits.job_deadline_s)
    DEFAULT_SPEED                = var.default_speed
    GPU_KIND                     = var.gpu_deployment.kind
    GPUS_PER_CONTAINER           = tostring(var.gpu_deployment.gpus_per_container)
    WARM_CONTAINERS              = tostring(var.gpu_deployment.warm_containers)
    POWERTOOLS_LOG_LEVEL         = var.log_level
    # Must match aws/lambda_proxy/observability.py: the failed-jobs alarm reads these metrics.
    POWERTOOLS_SERVICE_NAME      = local.metrics.service
    POWERTOOLS_METRICS_NAMESPACE = local.metrics.namespace
    # Events carry JWTs and pre-signed URLs: never log them.
    POWERTOOLS_LOGGER_LOG_EVENT = "false"
  }

  # One map per function so a function-specific setting has a place; today they share all.
  lambda_environment = { for k in keys(local.functions) : k => local.lambda_environment_common }
}
