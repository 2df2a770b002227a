################################################################################
# IAM roles: one per function and service, inline policies from modules/core.
# No IAM user and no access key exists anywhere: the GPU side gets pre-signed URLs only.
################################################################################

resource "aws_iam_role" "lambda" {
  for_each = local.names.functions

  name               = local.names.roles[each.key]
  description        = "${each.value}: only the tables, queues, secrets and S3 prefixes it uses"
  assume_role_policy = module.core.assume_role_policies[each.key]

  tags = var.tags
}

resource "aws_iam_role_policy" "lambda" {
  for_each = local.names.functions

  name   = "least-privilege"
  role   = aws_iam_role.lambda[each.key].id
  policy = module.core.policies[each.key]
}

resource "aws_iam_role" "state_machine" {
  name               = local.names.roles.state_machine
  description        = "${local.names.state_machine}: submit queue, batch results and its own child executions"
  assume_role_policy = module.core.assume_role_policies.state_machine

  tags = var.tags
}

resource "aws_iam_role_policy" "state_machine" {
  name   = "least-privilege"
  role   = aws_iam_role.state_machine.id
  policy = module.core.policies.state_machine
}

resource "aws_iam_role" "scheduler" {
  name               = local.names.roles.scheduler
  description        = "EventBridge Scheduler: invoke the reconciler only"
  assume_role_policy = module.core.assume_role_policies.scheduler

  tags = var.tags
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "least-privilege"
  role   = aws_iam_role.scheduler.id
  policy = module.core.policies.scheduler
}
