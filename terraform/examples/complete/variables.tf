variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "eu-west-1"
}

variable "jwt_issuer" {
  description = "Issuer (`iss`) of the tokens callers present, exactly as the tokens carry it."
  type        = string
  default     = "https://auth.example.com/"
}

variable "jwt_jwks_url" {
  description = "JWKS URL of the issuer."
  type        = string
  default     = "https://auth.example.com/.well-known/jwks.json"
}

variable "modal_api_url" {
  description = "URL of the deployed Modal internal API."
  type        = string
  default     = "https://example-workspace--multitalk-api.modal.run"
}

variable "globex_bucket" {
  description = "An existing bucket of tenant globex that the product reads from and writes to."
  type        = string
  default     = "globex-media-assets"
}
