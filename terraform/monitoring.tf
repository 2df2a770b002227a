################################################################################
# CloudWatch alarms and dashboard
################################################################################

locals {
  dlqs = {
    batch_submit_dlq = aws_sqs_queue.batch_submit_dlq.name
    async_dlq        = aws_sqs_queue.async_dlq.name
  }

  # The GPU metrics split by model (preset): a line per model that has reported, found by SEARCH
  # so a new preset needs no change here.
  gpu_metric_search = {
    for metric in ["GpuUtilizationMean", "GpuMemoryPeakGb", "GpuSeconds", "EstimatedCostUsd"] :
    metric => "{${module.core.metrics.namespace},model,service} service=\"${module.core.metrics.service}\" MetricName=\"${metric}\""
  }

  # Per-tenant metrics (aws/lambda_proxy/tenants/metrics.py): a line per tenant, by SEARCH.
  tenant_metric_search = {
    for metric in ["TenantJobsAdmitted", "TenantJobsFinished", "TenantGpuSeconds", "TenantQuotaRefused", "BatchItemsWaiting"] :
    metric => "{${module.core.metrics.namespace},service,tenant} service=\"${module.core.metrics.service}\" MetricName=\"${metric}\""
  }

  # Jobs from creation: waiting for a GPU (queue wait) and the whole run (end to end), reported
  # once per job when it is settled; p90 over 15 minutes, two periods in a row.
  job_latency_alarms = {
    queue_wait = {
      metric      = "JobQueueWaitSeconds"
      threshold   = var.alarm_thresholds.queue_wait_p90_s
      description = "p90 of the wait from a job's creation until a GPU started it (JobQueueWaitSeconds): the GPUs are too few for the load, or a tenant's limits are too wide."
    }
    end_to_end = {
      metric      = "JobEndToEndSeconds"
      threshold   = var.alarm_thresholds.end_to_end_p90_s
      description = "High latency: p90 of jobs' whole time from creation to a final state (JobEndToEndSeconds)."
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "failed_jobs" {
  count = var.create_alarms ? 1 : 0

  alarm_name          = "${var.name}-failed-jobs"
  alarm_description   = "Jobs settled as failed (JobsFailed, emitted by aws/lambda_proxy/jobs/settle.py)."
  namespace           = module.core.metrics.namespace
  metric_name         = "JobsFailed"
  dimensions          = { service = module.core.metrics.service }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.alarm_thresholds.failed_jobs_per_5min
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  tags = var.tags
}

# Each succeeded job reports its GPUs' mean utilisation once (aws/lambda_proxy/observability.py),
# so the average over a period is per job, not per GPU-second. CPU renders report none.
resource "aws_cloudwatch_metric_alarm" "low_gpu_utilization" {
  count = var.create_alarms ? 1 : 0

  alarm_name          = "${var.name}-low-gpu-utilization"
  alarm_description   = "Rendering jobs kept their GPUs busy under ${var.gpu_utilization_alarm.threshold_percent} % of the time on average (GpuUtilizationMean per succeeded job): GPUs paid for and idle. No GPU jobs is not breaching."
  namespace           = module.core.metrics.namespace
  metric_name         = "GpuUtilizationMean"
  dimensions          = { service = module.core.metrics.service }
  statistic           = "Average"
  period              = var.gpu_utilization_alarm.period_seconds
  evaluation_periods  = var.gpu_utilization_alarm.evaluation_periods
  threshold           = var.gpu_utilization_alarm.threshold_percent
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "api_latency" {
  count = var.create_alarms ? 1 : 0

  alarm_name          = "${var.name}-api-latency-p99"
  alarm_description   = "p99 latency of the HTTP API."
  namespace           = "AWS/ApiGateway"
  metric_name         = "Latency"
  dimensions          = { ApiId = aws_apigatewayv2_api.this.id }
  extended_statistic  = "p99"
  period              = 300
  evaluation_periods  = 3
  threshold           = var.alarm_thresholds.api_latency_p99_ms
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "api_5xx" {
  count = var.create_alarms ? 1 : 0

  alarm_name          = "${var.name}-api-5xx"
  alarm_description   = "Server errors returned by the HTTP API."
  namespace           = "AWS/ApiGateway"
  metric_name         = "5xx"
  dimensions          = { ApiId = aws_apigatewayv2_api.this.id }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.alarm_thresholds.api_5xx_per_5min
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "function_errors" {
  for_each = var.create_alarms ? local.names.functions : {}

  alarm_name          = "${each.value}-errors"
  alarm_description   = "Unhandled errors of ${each.value}."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.this[each.key].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.alarm_thresholds.function_errors_per_5m
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "state_machine_failures" {
  for_each = var.create_alarms ? toset(["ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"]) : toset([])

  alarm_name          = "${local.names.state_machine}-${lower(trimprefix(each.value, "Executions"))}"
  alarm_description   = "Batch executions ${lower(trimprefix(each.value, "Executions"))}."
  namespace           = "AWS/States"
  metric_name         = each.value
  dimensions          = { StateMachineArn = aws_sfn_state_machine.batch.arn }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  for_each = var.create_alarms ? local.dlqs : {}

  alarm_name          = "${each.value}-depth"
  alarm_description   = "Messages waiting in ${each.value}: inspect and redrive."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "job_latency" {
  for_each = var.create_alarms ? local.job_latency_alarms : {}

  alarm_name          = "${var.name}-job-${replace(each.key, "_", "-")}-p90"
  alarm_description   = each.value.description
  namespace           = module.core.metrics.namespace
  metric_name         = each.value.metric
  dimensions          = { service = module.core.metrics.service }
  extended_statistic  = "p90"
  period              = 900
  evaluation_periods  = 2
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  tags = var.tags
}

# API submissions refused by a tenant limit (429 tenant_quota_exceeded); batch items over a
# limit wait instead and are charted, not alarmed on.
resource "aws_cloudwatch_metric_alarm" "quota_refusals" {
  count = var.create_alarms ? 1 : 0

  alarm_name          = "${var.name}-tenant-quota-refusals"
  alarm_description   = "Submissions refused with 429 tenant_quota_exceeded (TenantQuotaRefused): a tenant outgrows its limits, or a client retries without honouring Retry-After."
  namespace           = module.core.metrics.namespace
  metric_name         = "TenantQuotaRefused"
  dimensions          = { service = module.core.metrics.service }
  statistic           = "Sum"
  period              = 900
  evaluation_periods  = 1
  threshold           = var.alarm_thresholds.quota_refusals_per_15min
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_dashboard" "this" {
  count = var.create_dashboard ? 1 : 0

  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title = "API requests and errors", region = local.region, stat = "Sum", period = 300
          metrics = [
            ["AWS/ApiGateway", "Count", "ApiId", aws_apigatewayv2_api.this.id],
            [".", "4xx", ".", "."],
            [".", "5xx", ".", "."],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title = "API latency (p50, p99)", region = local.region, period = 300
          metrics = [
            ["AWS/ApiGateway", "Latency", "ApiId", aws_apigatewayv2_api.this.id, { stat = "p50" }],
            ["...", { stat = "p99" }],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title = "Jobs", region = local.region, stat = "Sum", period = 300
          metrics = [
            for m in ["JobsSubmitted", "JobsSucceeded", "JobsFailed", "JobsCancelled", "SubmitRefused"] :
            [module.core.metrics.namespace, m, "service", module.core.metrics.service]
          ]
        }
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = {
          title = "Function errors and throttles", region = local.region, stat = "Sum", period = 300
          metrics = flatten([
            for f in values(local.names.functions) : [
              ["AWS/Lambda", "Errors", "FunctionName", f],
              ["AWS/Lambda", "Throttles", "FunctionName", f],
            ]
          ])
        }
      },
      {
        type = "metric", x = 0, y = 12, width = 12, height = 6
        properties = {
          title = "Batch executions", region = local.region, stat = "Sum", period = 300
          metrics = [
            for m in ["ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut"] :
            ["AWS/States", m, "StateMachineArn", aws_sfn_state_machine.batch.arn]
          ]
        }
      },
      {
        type = "metric", x = 12, y = 12, width = 12, height = 6
        properties = {
          title = "Queues", region = local.region, stat = "Maximum", period = 300
          metrics = [
            for q in [aws_sqs_queue.batch_submit.name, aws_sqs_queue.batch_submit_dlq.name, aws_sqs_queue.async_dlq.name] :
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q]
          ]
        }
      },
      {
        type = "metric", x = 0, y = 18, width = 6, height = 6
        properties = {
          title   = "GPU utilisation, mean per job (%)", region = local.region, period = var.gpu_utilization_alarm.period_seconds
          metrics = [[{ id = "util", expression = "SEARCH('${local.gpu_metric_search["GpuUtilizationMean"]}', 'Average', ${var.gpu_utilization_alarm.period_seconds})" }]]
          yAxis   = { left = { min = 0, max = 100 } }
          annotations = {
            horizontal = [{ label = "low-utilisation alarm", value = var.gpu_utilization_alarm.threshold_percent }]
          }
        }
      },
      {
        type = "metric", x = 6, y = 18, width = 6, height = 6
        properties = {
          title   = "GPU memory, peak per job (GB)", region = local.region, period = 900
          metrics = [[{ id = "memory", expression = "SEARCH('${local.gpu_metric_search["GpuMemoryPeakGb"]}', 'Maximum', 900)" }]]
          yAxis   = { left = { min = 0 } }
        }
      },
      {
        type = "metric", x = 12, y = 18, width = 6, height = 6
        properties = {
          title   = "GPU-seconds per hour", region = local.region, period = 3600
          metrics = [[{ id = "seconds", expression = "SEARCH('${local.gpu_metric_search["GpuSeconds"]}', 'Sum', 3600)" }]]
          yAxis   = { left = { min = 0 } }
        }
      },
      {
        type = "metric", x = 18, y = 18, width = 6, height = 6
        properties = {
          title   = "Estimated GPU cost per hour (USD)", region = local.region, period = 3600
          metrics = [[{ id = "cost", expression = "SEARCH('${local.gpu_metric_search["EstimatedCostUsd"]}', 'Sum', 3600)" }]]
          yAxis   = { left = { min = 0 } }
        }
      },
      {
        type = "metric", x = 0, y = 24, width = 12, height = 6
        properties = {
          title = "Job queue wait and end to end (s, p50 and p90)", region = local.region, period = 900
          metrics = [
            for pair in setproduct(["JobQueueWaitSeconds", "JobEndToEndSeconds"], ["p50", "p90"]) :
            [module.core.metrics.namespace, pair[0], "service", module.core.metrics.service, { stat = pair[1] }]
          ]
          yAxis = { left = { min = 0 } }
          annotations = {
            horizontal = [
              { label = "queue-wait alarm (p90)", value = var.alarm_thresholds.queue_wait_p90_s },
              { label = "end-to-end alarm (p90)", value = var.alarm_thresholds.end_to_end_p90_s },
            ]
          }
        }
      },
      {
        type = "metric", x = 12, y = 24, width = 12, height = 6
        properties = {
          title   = "Jobs admitted and finished per tenant", region = local.region, period = 300
          metrics = [for m in ["TenantJobsAdmitted", "TenantJobsFinished"] : [{ id = lower(m), expression = "SEARCH('${local.tenant_metric_search[m]}', 'Sum', 300)" }]]
          yAxis   = { left = { min = 0 } }
        }
      },
      {
        type = "metric", x = 0, y = 30, width = 12, height = 6
        properties = {
          title   = "GPU-seconds per tenant per hour", region = local.region, period = 3600
          metrics = [[{ id = "tenantgpu", expression = "SEARCH('${local.tenant_metric_search["TenantGpuSeconds"]}', 'Sum', 3600)" }]]
          yAxis   = { left = { min = 0 } }
        }
      },
      {
        type = "metric", x = 12, y = 30, width = 12, height = 6
        properties = {
          title   = "Quota refusals (429) and batch items waiting, per tenant", region = local.region, period = 300
          metrics = [for m in ["TenantQuotaRefused", "BatchItemsWaiting"] : [{ id = lower(m), expression = "SEARCH('${local.tenant_metric_search[m]}', 'Sum', 300)" }]]
          yAxis   = { left = { min = 0 } }
        }
      },
    ]
  })
}
