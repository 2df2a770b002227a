################################################################################
# IAM policy documents: exactly the actions and ARNs each principal uses
################################################################################

locals {
  kms_via = {
    s3             = "s3.${var.region}.amazonaws.com"
    sqs            = "sqs.${var.region}.amazonaws.com"
    secretsmanager = "secretsmanager.${var.region}.amazonaws.com"
  }

  # Statements every function needs: its own log group (Terraform creates it, so no
  # CreateLogGroup) and X-Ray, whose write actions support no resource-level scoping.
  lambda_base_statements = {
    for k, f in local.functions : k => [
      {
        Sid      = "OwnLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = ["${local.arn_prefix}:logs:${local.regional}:log-group:${local.lambda_log_groups[k]}:*"]
      },
      {
        Sid      = "Tracing"
        Effect   = "Allow"
        Action   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
        Resource = ["*"]
      },
    ]
  }

  idempotency_statement = {
    Sid      = "Idempotency"
    Effect   = "Allow"
    Action   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
    Resource = [local.table_arns.idempotency]
  }

  # Per-tenant counters: admitting a job (a transaction of updates, a lease put and a budget
  # check), releasing it (lease delete and updates) and reading counters (GET /usage, the fair
  # share). Transactions are authorized per item action; there is no action of their own.
  usage_admit_statement = {
    Sid      = "TenantUsage"
    Effect   = "Allow"
    Action   = ["dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
    Resource = [local.table_arns.usage]
  }
  usage_release_statement = {
    Sid      = "TenantUsageRelease"
    Effect   = "Allow"
    Action   = ["dynamodb:DeleteItem", "dynamodb:UpdateItem"]
    Resource = [local.table_arns.usage]
  }

  # Tenant data: HeadObject/GET on inputs; PUT (pre-signed for the GPU side) and GET on outputs.
  read_inputs_statement = {
    Sid      = "ReadTenantInputs"
    Effect   = "Allow"
    Action   = ["s3:GetObject"]
    Resource = sort(distinct(concat(local.read_object_arns, local.write_object_arns)))
  }
  write_outputs_statement = {
    Sid      = "WriteTenantOutputs"
    Effect   = "Allow"
    Action   = ["s3:PutObject", "s3:AbortMultipartUpload"]
    Resource = local.write_object_arns
  }
  # ListBucket turns a missing object into a clean 404 instead of a 403; narrowed to the
  # tenants' prefixes so no one lists a whole bucket.
  list_tenant_prefixes_statements = [
    for b, prefixes in local.list_prefixes_by_bucket : {
      Sid       = "ListTenantPrefixes${replace(title(replace(b, "/[.-]/", " ")), " ", "")}"
      Effect    = "Allow"
      Action    = ["s3:ListBucket"]
      Resource  = ["${local.arn_prefix}:s3:::${b}"]
      Condition = { StringLike = { "s3:prefix" = prefixes } }
    } if length(prefixes) > 0
  ]

  # Settling a job checks the rendered output (HeadObject) and signs a GET for the caller.
  read_outputs_statement = {
    Sid      = "ReadTenantOutputs"
    Effect   = "Allow"
    Action   = ["s3:GetObject"]
    Resource = local.write_object_arns
  }
  list_output_prefixes_statements = [
    for b, prefixes in local.output_prefixes_by_bucket : {
      Sid       = "ListTenantOutputs${replace(title(replace(b, "/[.-]/", " ")), " ", "")}"
      Effect    = "Allow"
      Action    = ["s3:ListBucket"]
      Resource  = ["${local.arn_prefix}:s3:::${b}"]
      Condition = { StringLike = { "s3:prefix" = prefixes } }
    }
  ]

  lambda_policies = {
    api = concat(local.lambda_base_statements.api, [
      {
        Sid    = "Jobs"
        Effect = "Allow"
        Action = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"]
        Resource = [
          local.table_arns.jobs,
          "${local.table_arns.jobs}/index/${local.jobs_indexes.tenant}",
        ]
      },
      local.idempotency_statement,
      local.usage_admit_statement,
      local.read_inputs_statement,
      local.write_outputs_statement,
      {
        # DELETE /jobs/{id} on a batch item ends its waiting task at once.
        Sid      = "FailCancelledBatchTasks"
        Effect   = "Allow"
        Action   = ["states:SendTaskFailure"]
        Resource = local.task_token_arns
      },
      {
        Sid      = "Secrets"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = [local.secret_arn_patterns.modal_proxy_token, local.secret_arn_patterns.tenant_webhook_secrets]
      },
      {
        Sid       = "KeyViaServices"
        Effect    = "Allow"
        Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource  = [var.kms_key_arn]
        Condition = { StringEquals = { "kms:ViaService" = [local.kms_via.s3, local.kms_via.secretsmanager] } }
      },
    ], local.list_tenant_prefixes_statements)

    callbacks = concat(local.lambda_base_statements.callbacks, [
      {
        Sid      = "Jobs"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
        Resource = [local.table_arns.jobs]
      },
      local.idempotency_statement,
      local.usage_release_statement,
      # URL refresh: fresh pre-signed GETs for inputs and a fresh PUT for the output.
      local.read_inputs_statement,
      local.write_outputs_statement,
      {
        Sid      = "CompleteBatchTasks"
        Effect   = "Allow"
        Action   = ["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"]
        Resource = local.task_token_arns
      },
      {
        Sid      = "TenantWebhookSecrets"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = [local.secret_arn_patterns.tenant_webhook_secrets]
      },
      {
        Sid       = "KeyViaServices"
        Effect    = "Allow"
        Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource  = [var.kms_key_arn]
        Condition = { StringEquals = { "kms:ViaService" = [local.kms_via.s3, local.kms_via.secretsmanager] } }
      },
    ], local.list_tenant_prefixes_statements)

    reconciler = concat(local.lambda_base_statements.reconciler, [
      {
        Sid    = "OverdueJobs"
        Effect = "Allow"
        Action = ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"]
        Resource = [
          local.table_arns.jobs,
          "${local.table_arns.jobs}/index/${local.jobs_indexes.active}",
          "${local.table_arns.jobs}/index/${local.jobs_indexes.followups}",
        ]
      },
      local.usage_release_statement,
      local.read_outputs_statement,
      {
        # Modal's view decides: an overdue job may have succeeded, failed or been cancelled.
        Sid      = "SettleBatchTasks"
        Effect   = "Allow"
        Action   = ["states:SendTaskSuccess", "states:SendTaskFailure"]
        Resource = local.task_token_arns
      },
      {
        Sid      = "Secrets"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = [local.secret_arn_patterns.modal_proxy_token, local.secret_arn_patterns.tenant_webhook_secrets]
      },
      {
        # Lambda's asynchronous-invocation DLQ is written with the function's own role.
        Sid      = "AsyncDeadLetters"
        Effect   = "Allow"
        Action   = ["sqs:SendMessage"]
        Resource = [local.queue_arns.async_dlq]
      },
      {
        Sid       = "KeyViaServices"
        Effect    = "Allow"
        Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource  = [var.kms_key_arn]
        Condition = { StringEquals = { "kms:ViaService" = [local.kms_via.s3, local.kms_via.sqs, local.kms_via.secretsmanager] } }
      },
    ], local.list_output_prefixes_statements)

    batch_submit = concat(local.lambda_base_statements.batch_submit, [
      {
        # What the SQS event source mapping does with the function's role.
        Sid      = "ConsumeSubmitQueue"
        Effect   = "Allow"
        Action   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
        Resource = [local.queue_arns.batch_submit]
      },
      {
        # An item over its tenant's limits goes back to the queue, delayed, to wait.
        Sid      = "RequeueWaitingItems"
        Effect   = "Allow"
        Action   = ["sqs:GetQueueUrl", "sqs:SendMessage"]
        Resource = [local.queue_arns.batch_submit]
      },
      {
        Sid      = "Jobs"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
        Resource = [local.table_arns.jobs]
      },
      local.idempotency_statement,
      local.usage_admit_statement,
      local.read_inputs_statement,
      local.write_outputs_statement,
      {
        # The plan and summarize steps answer their own task tokens; item tokens are failed
        # here when a job cannot be submitted (the callbacks function completes the rest), and
        # heartbeat while an item waits for its tenant's slot.
        Sid      = "AnswerBatchTasks"
        Effect   = "Allow"
        Action   = ["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"]
        Resource = local.task_token_arns
      },
      {
        # The item list the Map reads, the per-item records and summary.json.
        Sid      = "BatchResults"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject"]
        Resource = [local.results_object_arn]
      },
      {
        Sid       = "ListBatchResults"
        Effect    = "Allow"
        Action    = ["s3:ListBucket"]
        Resource  = [local.data_bucket_arn]
        Condition = { StringLike = { "s3:prefix" = ["${var.results_prefix}*"] } }
      },
      {
        Sid      = "ModalProxyToken"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = [local.secret_arn_patterns.modal_proxy_token]
      },
      {
        Sid       = "KeyViaServices"
        Effect    = "Allow"
        Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource  = [var.kms_key_arn]
        Condition = { StringEquals = { "kms:ViaService" = [local.kms_via.s3, local.kms_via.sqs, local.kms_via.secretsmanager] } }
      },
    ], local.list_tenant_prefixes_statements)
  }

  state_machine_statements = [
    {
      Sid      = "SubmitItems"
      Effect   = "Allow"
      Action   = ["sqs:SendMessage"]
      Resource = [local.queue_arns.batch_submit]
    },
    {
      # The ItemReader reads the planned item list, the item states store one record each and
      # the ResultWriter writes the map-run manifest (multipart): all under the results prefix.
      # Tenant inputs are listed and read by the batch_submit function, not by the state machine.
      Sid      = "BatchResults"
      Effect   = "Allow"
      Action   = ["s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"]
      Resource = [local.results_object_arn]
    },
    {
      # A Distributed Map starts child executions of its own state machine.
      Sid      = "RunMapChildren"
      Effect   = "Allow"
      Action   = ["states:StartExecution"]
      Resource = [local.state_machine_arn]
    },
    {
      Sid      = "ManageMapChildren"
      Effect   = "Allow"
      Action   = ["states:DescribeExecution", "states:StopExecution"]
      Resource = [local.child_execution_arn]
    },
    {
      Sid       = "KeyViaServices"
      Effect    = "Allow"
      Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
      Resource  = [var.kms_key_arn]
      Condition = { StringEquals = { "kms:ViaService" = [local.kms_via.s3, local.kms_via.sqs] } }
    },
    {
      # Vended log delivery and X-Ray: these actions have no resource-level permissions.
      Sid    = "LogDeliveryAndTracing"
      Effect = "Allow"
      Action = [
        "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
        "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
      ]
      Resource = ["*"]
    },
  ]

  scheduler_statements = [
    {
      Sid      = "InvokeReconciler"
      Effect   = "Allow"
      Action   = ["lambda:InvokeFunction"]
      Resource = [local.function_arns.reconciler]
    },
    {
      Sid      = "UndeliveredSchedules"
      Effect   = "Allow"
      Action   = ["sqs:SendMessage"]
      Resource = [local.queue_arns.async_dlq]
    },
    {
      Sid       = "KeyViaSqs"
      Effect    = "Allow"
      Action    = ["kms:GenerateDataKey", "kms:Decrypt"]
      Resource  = [var.kms_key_arn]
      Condition = { StringEquals = { "kms:ViaService" = [local.kms_via.sqs] } }
    },
  ]

  policies = merge(
    { for k, statements in local.lambda_policies : k => jsonencode({ Version = "2012-10-17", Statement = statements }) },
    {
      state_machine = jsonencode({ Version = "2012-10-17", Statement = local.state_machine_statements })
      scheduler     = jsonencode({ Version = "2012-10-17", Statement = local.scheduler_statements })
    },
  )

  ################################################################################
  # Trust policies: only the service, only from this account (confused-deputy guard)
  ################################################################################

  assume_role_policies = merge(
    { for k in keys(local.functions) : k => jsonencode({
      Version = "2012-10-17"
      Statement = [{
        Effect    = "Allow"
        Principal = { Service = "lambda.amazonaws.com" }
        Action    = "sts:AssumeRole"
        Condition = { StringEquals = { "aws:SourceAccount" = var.account_id } }
      }]
    }) },
    {
      state_machine = jsonencode({
        Version = "2012-10-17"
        Statement = [{
          Effect    = "Allow"
          Principal = { Service = "states.amazonaws.com" }
          Action    = "sts:AssumeRole"
          Condition = {
            StringEquals = { "aws:SourceAccount" = var.account_id }
            # The pattern AWS documents for the confused-deputy guard of state machine roles.
            ArnLike = { "aws:SourceArn" = "${local.arn_prefix}:states:${local.regional}:stateMachine:*" }
          }
        }]
      })
      scheduler = jsonencode({
        Version = "2012-10-17"
        Statement = [{
          Effect    = "Allow"
          Principal = { Service = "scheduler.amazonaws.com" }
          Action    = "sts:AssumeRole"
          Condition = { StringEquals = { "aws:SourceAccount" = var.account_id } }
        }]
      })
    },
  )

  ################################################################################
  # Resource policies
  ################################################################################

  # The data bucket refuses plain HTTP and pre-signed requests older than the longest
  # lifetime the Lambdas sign for, whatever credentials signed them.
  data_bucket_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [local.data_bucket_arn, "${local.data_bucket_arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
      {
        Sid       = "DenyStalePresignedRequests"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = ["${local.data_bucket_arn}/*"]
        Condition = {
          StringEquals       = { "s3:authType" = "REST-QUERY-STRING" }
          NumericGreaterThan = { "s3:signatureAge" = tostring(max(var.limits.presign_get_expires_s, var.limits.presign_put_expires_s) * 1000) }
        }
      },
    ]
  })

  kms_key_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # Key administration stays with the account's IAM policies (the AWS default).
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "${local.arn_prefix}:iam::${var.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsOwnGroups"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.region}.amazonaws.com" }
        Action    = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = { "kms:EncryptionContext:aws:logs:arn" = "${local.arn_prefix}:logs:${local.regional}:log-group:*" }
        }
      },
    ]
  })
}
