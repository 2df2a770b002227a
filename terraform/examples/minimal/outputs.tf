output "api_endpoint" {
  description = "Base URL of the API."
  value       = module.multitalk.api_endpoint
}

output "data_bucket_name" {
  description = "Where tenant acme puts inputs (tenants/acme/inputs/) and finds outputs (tenants/acme/outputs/)."
  value       = module.multitalk.data_bucket_name
}

output "modal_proxy_token_secret_arn" {
  description = "Put the Modal proxy token here after apply."
  value       = module.multitalk.modal_proxy_token_secret_arn
}
