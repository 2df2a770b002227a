################################################################################
# EventBridge Scheduler: the reconciler settles jobs past their deadline
################################################################################

resource "aws_scheduler_schedule" "reconciler" {
  #checkov:skip=CKV_AWS_297:The schedule's only data is the constant input {"source":"scheduler"}; a customer managed key would protect nothing.
  name                = "${var.name}-reconciler"
  description         = "Settle jobs whose deadline passed without a final callback"
  schedule_expression = var.reconciler_schedule_expression

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.this["reconciler"].arn
    role_arn = aws_iam_role.scheduler.arn
    input    = jsonencode({ source = "scheduler" })

    retry_policy {
      maximum_retry_attempts       = 2
      maximum_event_age_in_seconds = 300
    }

    dead_letter_config {
      arn = aws_sqs_queue.async_dlq.arn
    }
  }
}
