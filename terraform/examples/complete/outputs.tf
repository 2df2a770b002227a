output "api_endpoint" {
  description = "Base URL of the API."
  value       = module.multitalk.api_endpoint
}

output "state_machine_arn" {
  description = "ARN of the batch state machine."
  value       = module.multitalk.state_machine_arn
}

output "tenants" {
  description = "Each tenant's resolved S3 locations."
  value       = module.multitalk.tenants
}

output "secret_arns" {
  description = "Secrets to fill after apply."
  value = {
    modal_proxy_token      = module.multitalk.modal_proxy_token_secret_arn
    tenant_webhook_secrets = module.multitalk.tenant_webhook_secrets_secret_arn
  }
}
