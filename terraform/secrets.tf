################################################################################
# Secrets Manager: containers only; values are put by the operator (never in Terraform state)
################################################################################

resource "aws_secretsmanager_secret" "modal_proxy_token" {
  #checkov:skip=CKV2_AWS_57:Modal issues proxy tokens in its own dashboard; rotation is a manual put-secret-value (README), there is no rotation Lambda to call.
  name                    = local.names.secrets.modal_proxy_token
  description             = "Modal proxy auth token {\"token_id\", \"token_secret\"} sent as Modal-Key/Modal-Secret."
  kms_key_id              = local.kms_key_arn
  recovery_window_in_days = 7

  tags = var.tags
}

resource "aws_secretsmanager_secret" "tenant_webhook_secrets" {
  #checkov:skip=CKV2_AWS_57:Webhook secrets are shared with each tenant out of band; rotating them needs the tenant, so rotation is an operator runbook step (README).
  name                    = local.names.secrets.tenant_webhook_secrets
  description             = "Per-tenant webhook signing secrets {\"<tenant>\": \"whsec_...\"}."
  kms_key_id              = local.kms_key_arn
  recovery_window_in_days = 7

  tags = var.tags
}
