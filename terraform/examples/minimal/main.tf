# The smallest deployment: one tenant, a new data bucket and key, every default.

provider "aws" {
  region = var.region
}

module "multitalk" {
  source = "../../"

  tenants = {
    acme = {}
  }

  jwt = {
    issuer   = var.jwt_issuer
    audience = "multitalk-video-api"
    jwks_url = var.jwt_jwks_url
  }

  modal_api_url = var.modal_api_url
}
