################################################################################
# SQS: batch submit queue (task tokens from the state machine) and dead-letter queues
################################################################################

resource "aws_sqs_queue" "batch_submit_dlq" {
  name                              = local.names.queues.batch_submit_dlq
  message_retention_seconds         = 1209600
  kms_master_key_id                 = local.kms_key_arn
  kms_data_key_reuse_period_seconds = 300

  tags = var.tags
}

resource "aws_sqs_queue" "batch_submit" {
  name = local.names.queues.batch_submit
  # Six times the function timeout, as Lambda's SQS event source recommends.
  visibility_timeout_seconds        = 6 * var.lambda_timeout.batch_submit
  message_retention_seconds         = 345600
  kms_master_key_id                 = local.kms_key_arn
  kms_data_key_reuse_period_seconds = 300

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.batch_submit_dlq.arn
    maxReceiveCount     = var.batch_submit_max_receive_count
  })

  tags = var.tags
}

resource "aws_sqs_queue_redrive_allow_policy" "batch_submit_dlq" {
  queue_url = aws_sqs_queue.batch_submit_dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.batch_submit.arn]
  })
}

# Failed asynchronous invocations of the reconciler and schedules that could not be delivered.
resource "aws_sqs_queue" "async_dlq" {
  name                              = local.names.queues.async_dlq
  message_retention_seconds         = 1209600
  kms_master_key_id                 = local.kms_key_arn
  kms_data_key_reuse_period_seconds = 300

  tags = var.tags
}
