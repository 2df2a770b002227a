################################################################################
# Lambda functions: api, callbacks, reconciler, batch_submit (one zip, four handlers)
################################################################################

resource "aws_cloudwatch_log_group" "lambda" {
  for_each = local.names.functions

  name              = "/aws/lambda/${each.value}"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn

  tags = var.tags
}

resource "aws_lambda_function" "this" {
  for_each = local.names.functions

  #checkov:skip=CKV_AWS_117:The functions reach only AWS public endpoints and Modal over HTTPS; a VPC would add NAT cost and no isolation.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile the operator owns; the zip is built reproducibly by scripts/package_lambdas.py and its hash pinned via source_code_hash.
  #checkov:skip=CKV_AWS_116:A DLQ applies to asynchronous invocation only: api and callbacks are synchronous (API Gateway), batch_submit's failures go to the SQS source queue's DLQ; the reconciler has one (dynamic block).
  function_name = each.value
  description   = "MultiTalk video API: ${each.key}"
  role          = aws_iam_role.lambda[each.key].arn

  runtime          = "python3.12"
  handler          = module.core.handlers[each.key]
  architectures    = [var.lambda_architecture]
  filename         = local.lambda_package
  source_code_hash = filebase64sha256(local.lambda_package)

  memory_size                    = var.lambda_memory_size[each.key]
  timeout                        = var.lambda_timeout[each.key]
  reserved_concurrent_executions = var.lambda_reserved_concurrency[each.key]

  kms_key_arn = local.kms_key_arn

  environment {
    variables = module.core.lambda_environment[each.key]
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.lambda[each.key].name
  }

  dynamic "dead_letter_config" {
    for_each = each.key == "reconciler" ? [aws_sqs_queue.async_dlq.arn] : []

    content {
      target_arn = dead_letter_config.value
    }
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.lambda]
}

# The reconciler's retries are its next scheduled run, not Lambda's async retries.
resource "aws_lambda_function_event_invoke_config" "reconciler" {
  function_name                = aws_lambda_function.this["reconciler"].function_name
  maximum_retry_attempts       = 0
  maximum_event_age_in_seconds = 300
}

resource "aws_lambda_event_source_mapping" "batch_submit" {
  event_source_arn = aws_sqs_queue.batch_submit.arn
  function_name    = aws_lambda_function.this["batch_submit"].arn
  batch_size       = 10
  # The handler reports failed items; only those return to the queue.
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.batch_submit_max_concurrency
  }
}

resource "aws_lambda_permission" "api" {
  statement_id  = "AllowHttpApi"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["api"].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this.execution_arn}/*/*"
}

resource "aws_lambda_permission" "callbacks" {
  statement_id  = "AllowHttpApiCallbacks"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["callbacks"].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this.execution_arn}/*/POST/callbacks/*"
}
