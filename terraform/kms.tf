################################################################################
# Customer managed key (tables, queues, secrets, log groups, data bucket)
################################################################################

resource "aws_kms_key" "this" {
  count = var.create_kms_key ? 1 : 0

  description             = "${var.name}: jobs, queues, secrets, logs and video data"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = module.core.kms_key_policy

  tags = var.tags
}

resource "aws_kms_alias" "this" {
  count = var.create_kms_key ? 1 : 0

  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this[0].key_id
}
