# Whole-module tests against a mocked AWS provider (Terraform >= 1.7 or OpenTofu >= 1.8).
# They need the hashicorp/aws provider schema, so run them where the registry is reachable:
#
#   cd terraform && terraform init -backend=false && terraform test
#
# Nothing is created: `apply` here runs against mock_provider. The pure logic (names, policies,
# definition, validations) has its own provider-free tests in modules/core/tests.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_region" {
    defaults = { region = "eu-west-1" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_resource "aws_kms_key" {
    defaults = {
      arn    = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
      key_id = "1234abcd-12ab-34cd-56ef-1234567890ab"
    }
  }
  mock_resource "aws_apigatewayv2_api" {
    defaults = {
      id            = "abc123"
      api_endpoint  = "https://abc123.execute-api.eu-west-1.amazonaws.com"
      execution_arn = "arn:aws:execute-api:eu-west-1:123456789012:abc123"
    }
  }
  mock_resource "aws_sqs_queue" {
    defaults = { arn = "arn:aws:sqs:eu-west-1:123456789012:mocked" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/mocked" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:mocked" }
  }
  mock_resource "aws_lambda_function" {
    defaults = {
      arn        = "arn:aws:lambda:eu-west-1:123456789012:function:mocked"
      invoke_arn = "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:mocked/invocations"
    }
  }
  mock_resource "aws_sfn_state_machine" {
    defaults = { arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:mocked" }
  }
}

variables {
  name    = "mt-mock"
  tenants = { acme = {} }
  jwt = {
    issuer   = "https://idp.example.com/"
    audience = "multitalk-video-api"
    jwks_url = "https://idp.example.com/.well-known/jwks.json"
  }
  modal_api_url = "https://example--multitalk-api.modal.run"
  # Any file will do under a mocked provider: the plan only hashes it. Real deployments use
  # the zip scripts/package_lambdas.py builds (the default, dist/lambda.zip).
  lambda_package_path = "./versions.tf"
}

run "default_deployment" {
  assert {
    condition     = alltrue([for f in aws_lambda_function.this : f.runtime == "python3.12" && f.tracing_config[0].mode == "Active"])
    error_message = "every function runs python3.12 with active tracing"
  }

  assert {
    condition     = aws_lambda_function.this["batch_submit"].handler == "aws.step_functions.handlers.batch_submit.handler"
    error_message = "batch_submit points at its handler"
  }

  assert {
    condition     = aws_lambda_function.this["reconciler"].reserved_concurrent_executions == 1
    error_message = "the reconciler never runs twice at once"
  }

  assert {
    condition     = aws_lambda_event_source_mapping.batch_submit.function_response_types == toset(["ReportBatchItemFailures"])
    error_message = "the SQS event source reports partial batch failures"
  }

  assert {
    condition     = aws_sfn_state_machine.batch.type == "STANDARD" && aws_sfn_state_machine.batch.tracing_configuration[0].enabled
    error_message = "the batch state machine is STANDARD (task tokens) and traced"
  }

  assert {
    condition     = aws_apigatewayv2_route.public["POST /callbacks/{job_id}"].authorization_type == "NONE"
    error_message = "callbacks carry a webhook signature, not a JWT"
  }

  assert {
    condition     = alltrue([for r in aws_apigatewayv2_route.protected : r.authorization_type == "JWT"])
    error_message = "job routes sit behind the native JWT authorizer"
  }

  assert {
    condition     = aws_dynamodb_table.jobs.point_in_time_recovery[0].enabled && aws_dynamodb_table.jobs.ttl[0].attribute_name == "expires_at"
    error_message = "the jobs table has PITR and a TTL"
  }

  assert {
    condition     = length(aws_s3_bucket.data) == 1 && aws_s3_bucket.data[0].bucket == "mt-mock-123456789012-data"
    error_message = "a data bucket named <name>-<account>-data is created by default"
  }

  assert {
    condition     = aws_lambda_function.this["api"].environment[0].variables.CALLBACK_BASE_URL == "https://abc123.execute-api.eu-west-1.amazonaws.com"
    error_message = "the functions know the API's public URL for callbacks"
  }

  assert {
    condition     = aws_lambda_function.this["api"].environment[0].variables.DEFAULT_SPEED == "quality" && aws_lambda_function.this["batch_submit"].environment[0].variables.DEFAULT_SPEED == "quality"
    error_message = "jobs that name no speed profile get the reference sampler by default"
  }
}

run "default_speed_reaches_the_functions" {
  command = plan

  variables {
    default_speed = "balanced"
  }

  assert {
    condition     = aws_lambda_function.this["api"].environment[0].variables.DEFAULT_SPEED == "balanced"
    error_message = "default_speed is passed to the functions as DEFAULT_SPEED"
  }
}

run "rejects_unknown_default_speed" {
  command = plan

  variables {
    default_speed = "ludicrous"
  }

  expect_failures = [var.default_speed]
}

run "gpu_deployment_reaches_the_functions" {
  command = plan

  variables {
    gpu_deployment = { kind = "A100-80GB", gpus_per_container = 4, warm_containers = 1 }
  }

  assert {
    condition     = aws_lambda_function.this["api"].environment[0].variables.GPU_KIND == "A100-80GB" && aws_lambda_function.this["api"].environment[0].variables.GPUS_PER_CONTAINER == "4" && aws_lambda_function.this["api"].environment[0].variables.WARM_CONTAINERS == "1"
    error_message = "gpu_deployment is passed to the functions for the job estimates"
  }
}

run "rejects_an_unknown_gpu_kind" {
  command = plan

  variables {
    gpu_deployment = { kind = "H100:8" }
  }

  expect_failures = [var.gpu_deployment]
}

run "existing_bucket_and_key" {
  variables {
    create_data_bucket = false
    data_bucket_name   = "existing-media"
    create_kms_key     = false
    kms_key_arn        = "arn:aws:kms:eu-west-1:123456789012:key/abcd1234-12ab-34cd-56ef-1234567890ab"
  }

  assert {
    condition     = length(aws_s3_bucket.data) == 0 && length(aws_s3_bucket_policy.data) == 0 && length(aws_kms_key.this) == 0
    error_message = "existing buckets and keys are referenced, never managed"
  }

  assert {
    condition     = output.tenants.acme.read == ["s3://existing-media/tenants/acme/inputs/"]
    error_message = "tenant prefixes resolve into the existing bucket"
  }
}

run "existing_bucket_needs_a_name" {
  command = plan

  variables {
    create_data_bucket = false
  }

  expect_failures = [output.data_bucket_name]
}

run "native_authorizer_refuses_es256" {
  command = plan

  variables {
    jwt = {
      issuer     = "https://idp.example.com/"
      audience   = "multitalk-video-api"
      jwks_url   = "https://idp.example.com/.well-known/jwks.json"
      algorithms = ["ES256"]
    }
  }

  expect_failures = [aws_apigatewayv2_authorizer.jwt]
}

run "lambda_only_authentication" {
  variables {
    create_jwt_authorizer = false
    jwt = {
      issuer     = "https://idp.example.com/"
      audience   = "multitalk-video-api"
      jwks_url   = "https://idp.example.com/.well-known/jwks.json"
      algorithms = ["RS256", "ES256"]
    }
  }

  assert {
    condition     = length(aws_apigatewayv2_authorizer.jwt) == 0 && alltrue([for r in aws_apigatewayv2_route.protected : r.authorization_type == "NONE"])
    error_message = "without the native authorizer the Lambda's own check is the gate"
  }
}

run "transfer_acceleration_is_off_by_default" {
  command = plan

  assert {
    condition     = length(aws_s3_bucket_accelerate_configuration.data) == 0 && alltrue([for f in aws_lambda_function.this : f.environment[0].variables.S3_ACCELERATED_BUCKETS == ""])
    error_message = "no bucket is accelerated, and no URL signed for the accelerate endpoint, unless asked"
  }
}

run "transfer_acceleration" {
  variables {
    s3_transfer_acceleration = true
  }

  assert {
    condition     = aws_s3_bucket_accelerate_configuration.data[0].bucket == "mt-mock-123456789012-data" && aws_s3_bucket_accelerate_configuration.data[0].status == "Enabled"
    error_message = "the created data bucket is accelerated"
  }

  assert {
    condition     = alltrue([for f in aws_lambda_function.this : f.environment[0].variables.S3_ACCELERATED_BUCKETS == "mt-mock-123456789012-data"])
    error_message = "every function signs the data bucket's URLs through the accelerate endpoint"
  }
}

run "transfer_acceleration_refuses_a_dotted_bucket" {
  command = plan

  variables {
    s3_transfer_acceleration = true
    data_bucket_name         = "media.example.com"
  }

  expect_failures = [aws_s3_bucket_accelerate_configuration.data]
}

run "transfer_acceleration_needs_a_bucket_it_manages" {
  command = plan

  variables {
    s3_transfer_acceleration = true
    create_data_bucket       = false
    data_bucket_name         = "existing-media"
  }

  expect_failures = [aws_s3_bucket_accelerate_configuration.data]
}
