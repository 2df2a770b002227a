################################################################################
# Step Functions: the batch state machine (Distributed Map, one task token per item)
################################################################################

resource "aws_cloudwatch_log_group" "state_machine" {
  name              = local.names.log_groups.state_machine
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn

  tags = var.tags
}

resource "aws_sfn_state_machine" "batch" {
  #checkov:skip=CKV_AWS_285:Execution data carries each item's task token (a bearer capability for SendTaskSuccess) on its way to SQS; the log keeps events and errors without it.
  name     = local.names.state_machine
  type     = "STANDARD"
  role_arn = aws_iam_role.state_machine.arn

  definition = module.core.state_machine_definition

  logging_configuration {
    log_destination = "${aws_cloudwatch_log_group.state_machine.arn}:*"
    level           = "ALL"
    # Execution data holds task tokens on their way to SQS: keep it out of the logs.
    include_execution_data = false
  }

  tracing_configuration {
    enabled = true
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.state_machine]

  lifecycle {
    precondition {
      condition     = module.core.state_machine_definition != null
      error_message = "The state machine template was not found (aws/step_functions/batch.asl.json.tftpl or var.state_machine_template_path)."
    }
  }
}
