variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "us-east-1"
}

variable "jwt_issuer" {
  description = "Issuer (`iss`) of the tokens callers present, exactly as the tokens carry it."
  type        = string
}

variable "jwt_jwks_url" {
  description = "JWKS URL of the issuer."
  type        = string
}

variable "modal_api_url" {
  description = "URL of the deployed Modal internal API (`modal deploy` prints it)."
  type        = string
}
