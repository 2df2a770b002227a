# Pure-logic tests: names, tenant resolution, IAM documents, the Lambda environment and input
# validation. No provider is involved, so these run offline with `terraform test`.

variables {
  name        = "mt-test"
  region      = "eu-west-1"
  account_id  = "123456789012"
  kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

  data_bucket_name = "mt-test-data"
  tenants = {
    acme = {}
    globex = {
      read  = ["s3://globex-media/in/", "shared/reference/"]
      write = ["s3://globex-media/out/"]
    }
  }
  jwt = {
    issuer   = "https://idp.example.com/"
    audience = "multitalk-video-api"
    jwks_url = "https://idp.example.com/.well-known/jwks.json"
  }
  modal_api_url = "https://example--multitalk-api.modal.run"
  api_endpoint  = "https://abc123.execute-api.eu-west-1.amazonaws.com/"
}

run "names_and_arns" {
  command = plan

  assert {
    condition     = output.names.functions.batch_submit == "mt-test-batch-submit" && output.names.tables.jobs == "mt-test-jobs"
    error_message = "resource names must be <name>-<component>"
  }

  assert {
    condition     = output.arns.state_machine == "arn:aws:states:eu-west-1:123456789012:stateMachine:mt-test-batch"
    error_message = "state machine ARN is derived from the name"
  }

  assert {
    condition     = output.queue_urls.batch_submit == "https://sqs.eu-west-1.amazonaws.com/123456789012/mt-test-batch-submit"
    error_message = "queue URL is derived from region, account and name"
  }

  assert {
    condition     = output.handlers.batch_submit == "aws.step_functions.handlers.batch_submit.handler" && output.handlers.callbacks == "aws.lambda_proxy.handlers.callbacks.handler"
    error_message = "handlers must match the packaged modules"
  }
}

run "tenant_locations_resolve_to_s3_urls" {
  command = plan

  assert {
    condition     = output.tenants_config.acme.read == ["s3://mt-test-data/tenants/acme/inputs/"] && output.tenants_config.acme.write == ["s3://mt-test-data/tenants/acme/outputs/"]
    error_message = "a tenant without locations gets tenants/<tenant>/inputs|outputs/ in the data bucket"
  }

  assert {
    condition     = output.tenants_config.globex.read == ["s3://globex-media/in/", "s3://mt-test-data/shared/reference/"]
    error_message = "relative prefixes live in the data bucket, s3:// URLs stay as given"
  }

  assert {
    condition     = jsonencode(output.data_buckets) == jsonencode(["globex-media", "mt-test-data"])
    error_message = "every bucket a tenant names is listed once"
  }

  assert {
    condition     = jsondecode(output.lambda_environment.api.TENANTS_CONFIG) == output.tenants_config
    error_message = "TENANTS_CONFIG carries the resolved tenants"
  }
}

run "lambda_policies_are_scoped" {
  command = plan

  # No statement of a function role allows a wildcard action, and only X-Ray is on "*".
  assert {
    condition = alltrue(flatten([
      for role in ["api", "callbacks", "reconciler", "batch_submit"] : [
        for s in jsondecode(output.policies[role]).Statement : alltrue([for a in s.Action : !strcontains(a, "*")])
      ]
    ]))
    error_message = "function roles never use wildcard actions"
  }

  assert {
    condition = alltrue(flatten([
      for role in ["api", "callbacks", "reconciler", "batch_submit"] : [
        for s in jsondecode(output.policies[role]).Statement : s.Sid == "Tracing" if contains(s.Resource, "*")
      ]
    ]))
    error_message = "only X-Ray statements may use Resource \"*\""
  }

  # Object access is confined to tenant prefixes: never a bucket-wide object ARN.
  assert {
    condition = alltrue(flatten([
      for role in ["api", "callbacks", "batch_submit"] : [
        for s in jsondecode(output.policies[role]).Statement : [
          for r in s.Resource : !can(regex("^arn:aws:s3:::[^/]+/\\*$", r))
        ]
      ]
    ]))
    error_message = "no role may touch every object of a bucket"
  }

  assert {
    condition = contains(
      [for s in jsondecode(output.policies.api).Statement : s.Resource if s.Sid == "WriteTenantOutputs"][0],
      "arn:aws:s3:::globex-media/out/*"
    )
    error_message = "writes are granted on the tenants' output prefixes"
  }

  # The reconciler only checks outputs (never inputs, never writes); only the submitter
  # consumes the queue.
  assert {
    condition = alltrue([
      for s in jsondecode(output.policies.reconciler).Statement :
      alltrue([for a in s.Action : contains(["s3:GetObject", "s3:ListBucket"], a) if startswith(a, "s3:")])
    ])
    error_message = "the reconciler may read outputs and nothing else in S3"
  }

  assert {
    condition     = jsonencode(sort([for s in jsondecode(output.policies.reconciler).Statement : s.Resource if s.Sid == "ReadTenantOutputs"][0])) == jsonencode(["arn:aws:s3:::globex-media/out/*", "arn:aws:s3:::mt-test-data/tenants/acme/outputs/*"])
    error_message = "the reconciler reads the output prefixes only"
  }

  assert {
    condition = alltrue([
      for role in ["api", "callbacks", "reconciler"] :
      length([for s in jsondecode(output.policies[role]).Statement : s if contains(s.Action, "sqs:ReceiveMessage")]) == 0
    ])
    error_message = "only batch_submit receives from the submit queue"
  }

  assert {
    condition = alltrue(flatten([
      for s in jsondecode(output.policies.api).Statement : [
        for a in s.Action : !startswith(a, "states:") || a == "states:SendTaskFailure"
      ]
    ]))
    error_message = "the API function may only fail the batch tasks of items it cancels"
  }
}

run "state_machine_policy" {
  command = plan

  assert {
    condition     = [for s in jsondecode(output.policies.state_machine).Statement : s.Resource if s.Sid == "SubmitItems"][0] == ["arn:aws:sqs:eu-west-1:123456789012:mt-test-batch-submit"]
    error_message = "the state machine sends only to the submit queue"
  }

  assert {
    condition     = [for s in jsondecode(output.policies.state_machine).Statement : s.Resource if s.Sid == "BatchResults"][0] == ["arn:aws:s3:::mt-test-data/batch-results/*"]
    error_message = "results are written under the results prefix only"
  }

  assert {
    condition = alltrue(flatten([
      for s in jsondecode(output.policies.state_machine).Statement : [
        for r in s.Resource : !startswith(r, "arn:aws:s3:::") || r == "arn:aws:s3:::mt-test-data/batch-results/*"
      ]
    ]))
    error_message = "the state machine reads no tenant data itself (batch_submit lists and reads inputs)"
  }

  assert {
    condition = [for s in jsondecode(output.policies.batch_submit).Statement : s.Resource if s.Sid == "AnswerBatchTasks"][0] == [
      "arn:aws:states:eu-west-1:123456789012:stateMachine:mt-test-batch",
      "arn:aws:states:eu-west-1:123456789012:stateMachine:mt-test-batch/*",
    ]
    error_message = "batch_submit answers task tokens of this state machine and its map children only"
  }

  assert {
    condition     = jsondecode(output.assume_role_policies.state_machine).Statement[0].Condition.StringEquals["aws:SourceAccount"] == "123456789012"
    error_message = "trust policies are pinned to the account"
  }
}

run "data_bucket_policy_denies_http_and_stale_urls" {
  command = plan

  assert {
    condition = anytrue([
      for s in jsondecode(output.data_bucket_policy).Statement :
      s.Effect == "Deny" && try(s.Condition.Bool["aws:SecureTransport"], "") == "false"
    ])
    error_message = "the bucket refuses requests without TLS"
  }

  assert {
    condition = anytrue([
      for s in jsondecode(output.data_bucket_policy).Statement :
      s.Effect == "Deny" && try(s.Condition.NumericGreaterThan["s3:signatureAge"], "") == "3600000"
    ])
    error_message = "pre-signed requests older than the longest signed lifetime are refused"
  }
}

run "lambda_environment_names" {
  command = plan

  assert {
    condition = alltrue([
      for k in ["JOBS_TABLE_NAME", "IDEMPOTENCY_TABLE_NAME", "TENANTS_CONFIG", "JWT_ISSUER", "JWT_AUDIENCE", "JWT_JWKS_URL", "JWT_TENANT_CLAIM", "MODAL_API_URL", "CALLBACK_BASE_URL", "MODAL_PROXY_TOKEN_SECRET_ARN"] :
      contains(keys(output.lambda_environment.api), k)
    ])
    error_message = "the required Settings fields are set"
  }

  assert {
    condition     = output.lambda_environment.api.CALLBACK_BASE_URL == "https://abc123.execute-api.eu-west-1.amazonaws.com"
    error_message = "the callback base URL has no trailing slash"
  }

  assert {
    condition     = output.lambda_environment.callbacks.POWERTOOLS_LOGGER_LOG_EVENT == "false"
    error_message = "events (JWTs, pre-signed URLs) are never logged"
  }
}

run "default_speed_reaches_the_submitting_functions" {
  command = plan

  assert {
    condition     = output.lambda_environment.api.DEFAULT_SPEED == "quality" && output.lambda_environment.batch_submit.DEFAULT_SPEED == "quality"
    error_message = "jobs that name no speed render with the reference sampler unless the deployment says otherwise"
  }
}

run "default_speed_is_the_deployments_choice" {
  command = plan

  variables {
    default_speed = "turbo"
  }

  assert {
    condition     = output.lambda_environment.api.DEFAULT_SPEED == "turbo" && output.lambda_environment.batch_submit.DEFAULT_SPEED == "turbo"
    error_message = "default_speed becomes DEFAULT_SPEED of the api and batch_submit functions"
  }
}

run "rejects_unknown_default_speed" {
  command = plan

  variables {
    default_speed = "fast"
  }

  expect_failures = [var.default_speed]
}

run "gpu_deployment_defaults_to_one_cold_h100_a_container" {
  command = plan

  assert {
    condition     = output.lambda_environment.api.GPU_KIND == "H100" && output.lambda_environment.api.GPUS_PER_CONTAINER == "1" && output.lambda_environment.api.WARM_CONTAINERS == "0"
    error_message = "the estimates assume the Modal deploy's defaults: H100, one GPU a container, none kept warm"
  }
}

run "gpu_deployment_reaches_the_submitting_functions" {
  command = plan

  variables {
    gpu_deployment = { kind = "H200", gpus_per_container = 8, warm_containers = 2 }
  }

  assert {
    condition = alltrue([for f in ["api", "batch_submit"] : (
      output.lambda_environment[f].GPU_KIND == "H200" &&
      output.lambda_environment[f].GPUS_PER_CONTAINER == "8" &&
      output.lambda_environment[f].WARM_CONTAINERS == "2"
    )])
    error_message = "gpu_deployment becomes GPU_KIND, GPUS_PER_CONTAINER and WARM_CONTAINERS of the functions that estimate"
  }
}

run "rejects_a_gpu_kind_the_estimates_have_no_figures_for" {
  command = plan

  variables {
    gpu_deployment = { kind = "L4" }
  }

  expect_failures = [var.gpu_deployment]
}

run "rejects_gpus_per_container_that_do_not_split_the_heads" {
  command = plan

  variables {
    gpu_deployment = { gpus_per_container = 3 }
  }

  expect_failures = [var.gpu_deployment]
}

run "rejects_a_fraction_of_a_warm_container" {
  command = plan

  variables {
    gpu_deployment = { warm_containers = 1.5 }
  }

  expect_failures = [var.gpu_deployment]
}

run "allowed_models_and_video_limits_reach_the_submitting_functions" {
  command = plan

  variables {
    allowed_models = ["multitalk-14b", "infinitetalk"]
    limits         = { max_video_bytes = 1073741824, max_video_s = 300 }
  }

  assert {
    condition     = output.lambda_environment.api.ALLOWED_MODELS == "multitalk-14b,infinitetalk" && output.lambda_environment.batch_submit.ALLOWED_MODELS == "multitalk-14b,infinitetalk"
    error_message = "allowed_models becomes ALLOWED_MODELS, comma-separated"
  }

  assert {
    condition     = output.lambda_environment.api.MAX_VIDEO_BYTES == "1073741824" && output.lambda_environment.api.MAX_VIDEO_S == "300"
    error_message = "the source video limits become MAX_VIDEO_BYTES and MAX_VIDEO_S"
  }
}

run "rejects_unknown_model" {
  command = plan

  variables {
    allowed_models = ["multitalk-14b", "infinitetalk-14b-multi"]
  }

  expect_failures = [var.allowed_models]
}

run "rejects_source_video_limit_past_ten_minutes" {
  command = plan

  variables {
    limits = { max_video_s = 601 }
  }

  expect_failures = [var.limits]
}

run "rejects_bad_tenant_location" {
  command = plan

  variables {
    tenants = { acme = { read = ["s3://bucket/../escape/"] } }
  }

  expect_failures = [var.tenants]
}

run "rejects_bucket_root_location" {
  command = plan

  variables {
    tenants = { acme = { write = ["s3://bucket-name/"] } }
  }

  expect_failures = [var.tenants]
}

run "rejects_symmetric_jwt_algorithm" {
  command = plan

  variables {
    jwt = {
      issuer     = "https://idp.example.com/"
      audience   = "a"
      jwks_url   = "https://idp.example.com/jwks"
      algorithms = ["HS256"]
    }
  }

  expect_failures = [var.jwt]
}

run "rejects_plain_http_modal_url" {
  command = plan

  variables {
    modal_api_url = "http://example.modal.run"
  }

  expect_failures = [var.modal_api_url]
}

run "rejects_heartbeat_above_timeout" {
  command = plan

  variables {
    batch = { heartbeat_seconds = 900, task_timeout_seconds = 600 }
  }

  expect_failures = [var.batch]
}

run "rejects_presign_beyond_role_credentials" {
  command = plan

  variables {
    limits = { presign_put_expires_s = 86400 }
  }

  expect_failures = [var.limits]
}

run "environment_over_4kb_is_refused" {
  command = plan

  variables {
    tenants = { for i in range(40) : "tenant-${i}" => {
      read  = ["s3://some-long-bucket-name-for-tenant-${i}/a/fairly/long/input/prefix/"]
      write = ["s3://some-long-bucket-name-for-tenant-${i}/a/fairly/long/output/prefix/"]
    } }
  }

  expect_failures = [output.lambda_environment]
}

run "no_bucket_is_accelerated_by_default" {
  command = plan

  assert {
    condition     = alltrue([for env in values(output.lambda_environment) : env.S3_ACCELERATED_BUCKETS == ""])
    error_message = "without acceleration every URL is signed for the regional endpoint"
  }
}

run "accelerated_buckets_reach_every_function" {
  command = plan

  variables {
    s3_accelerated_buckets = ["mt-test-data"]
  }

  assert {
    # Every function pre-signs (api, callbacks' URL refresh, batch_submit, the reconciler's retries).
    condition     = alltrue([for env in values(output.lambda_environment) : env.S3_ACCELERATED_BUCKETS == "mt-test-data"])
    error_message = "S3_ACCELERATED_BUCKETS names the accelerated buckets"
  }
}

run "rejects_acceleration_of_a_dotted_bucket" {
  command = plan

  variables {
    s3_accelerated_buckets = ["media.example.com"]
  }

  expect_failures = [var.s3_accelerated_buckets]
}

run "tenant_limits_default_to_ten_active_sixty_a_minute_no_budget" {
  command = plan

  assert {
    condition     = jsondecode(output.lambda_environment.api.TENANT_LIMITS_DEFAULT) == { max_active = 10, per_minute = 60 }
    error_message = "tenants without limits of their own may hold 10 jobs and submit 60 a minute, with no GPU-seconds budget"
  }

  assert {
    condition     = output.tenants_config.acme.limits == { max_active = 10, per_minute = 60 }
    error_message = "every tenant's resolved limits are in TENANTS_CONFIG"
  }

  assert {
    condition     = output.lambda_environment.batch_submit.GPU_SLOTS == "10" && output.lambda_environment.api.QUOTA_RETRY_AFTER_S == "30"
    error_message = "the fair share divides 10 GPU slots by default; a refusal for a slot says Retry-After 30"
  }

  assert {
    condition     = output.lambda_environment.batch_submit.BATCH_WAIT_MAX_S == "300" && output.lambda_environment.callbacks.USAGE_TABLE_NAME == "mt-test-usage"
    error_message = "a waiting batch item comes back within half the 600 s heartbeat; every function knows the usage table"
  }
}

run "a_tenants_own_limits_override_the_defaults_field_by_field" {
  command = plan

  variables {
    tenants = {
      acme   = {}
      globex = { limits = { max_active = 3, gpu_seconds_per_day = 7200 } }
    }
    tenant_limits = { per_minute = 20, gpu_slots = 4 }
    batch         = { heartbeat_seconds = 3000, task_timeout_seconds = 7200 }
  }

  assert {
    condition     = output.tenants_config.globex.limits == { max_active = 3, per_minute = 20, gpu_seconds_per_day = 7200 }
    error_message = "globex's own max_active and budget, the deployment's per_minute"
  }

  assert {
    condition     = output.tenants_config.acme.limits == { max_active = 10, per_minute = 20 }
    error_message = "acme keeps the defaults"
  }

  assert {
    condition     = output.lambda_environment.api.GPU_SLOTS == "4" && output.lambda_environment.batch_submit.BATCH_WAIT_MAX_S == "900"
    error_message = "gpu_slots reaches the functions; a wait is at most SQS's 900 s delay"
  }
}

run "rejects_a_fraction_of_an_active_job" {
  command = plan

  variables {
    tenant_limits = { max_active = 2.5 }
  }

  expect_failures = [var.tenant_limits]
}

run "rejects_zero_gpu_slots" {
  command = plan

  variables {
    tenant_limits = { gpu_slots = 0 }
  }

  expect_failures = [var.tenant_limits]
}

run "rejects_a_tenant_budget_of_zero_gpu_seconds" {
  command = plan

  variables {
    tenants = { acme = { limits = { gpu_seconds_per_day = 0 } } }
  }

  expect_failures = [var.tenants]
}
