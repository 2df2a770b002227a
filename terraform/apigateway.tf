################################################################################
# HTTP API: JWT-protected job routes, public health/OpenAPI, HMAC-signed callbacks
################################################################################

locals {
  # Route key => scopes the native authorizer requires.
  protected_routes = {
    "POST /generate-video"  = var.jwt_scopes.write
    "GET /jobs"             = var.jwt_scopes.read
    "GET /jobs/{job_id}"    = var.jwt_scopes.read
    "DELETE /jobs/{job_id}" = var.jwt_scopes.write
    "GET /usage"            = var.jwt_scopes.read
  }
  # Route key => function. Callbacks carry a per-job Standard Webhooks signature, not a JWT.
  public_routes = {
    "GET /health"              = "api"
    "GET /openapi.json"        = "api"
    "POST /callbacks/{job_id}" = "callbacks"
  }
}

resource "aws_apigatewayv2_api" "this" {
  name          = var.name
  description   = "MultiTalk talking-head video API"
  protocol_type = "HTTP"

  dynamic "cors_configuration" {
    for_each = length(var.cors_allow_origins) > 0 ? [1] : []

    content {
      allow_origins = var.cors_allow_origins
      allow_methods = ["GET", "POST", "DELETE"]
      allow_headers = ["authorization", "content-type", "idempotency-key"]
      max_age       = 3600
    }
  }

  tags = var.tags
}

resource "aws_apigatewayv2_authorizer" "jwt" {
  count = var.create_jwt_authorizer ? 1 : 0

  api_id           = aws_apigatewayv2_api.this.id
  name             = "${var.name}-jwt"
  authorizer_type  = "JWT"
  identity_sources = ["$request.header.Authorization"]

  jwt_configuration {
    issuer   = var.jwt.issuer
    audience = [var.jwt.audience]
  }

  lifecycle {
    precondition {
      condition     = !contains(var.jwt.algorithms, "ES256")
      error_message = "API Gateway's JWT authorizer verifies RSA keys only: drop ES256 from jwt.algorithms or set create_jwt_authorizer = false (the Lambda then verifies alone)."
    }
  }
}

resource "aws_apigatewayv2_integration" "lambda" {
  for_each = toset(["api", "callbacks"])

  api_id                 = aws_apigatewayv2_api.this.id
  integration_type       = "AWS_PROXY"
  integration_uri        = aws_lambda_function.this[each.key].invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = 29000
}

resource "aws_apigatewayv2_route" "protected" {
  for_each = local.protected_routes

  api_id    = aws_apigatewayv2_api.this.id
  route_key = each.key
  target    = "integrations/${aws_apigatewayv2_integration.lambda["api"].id}"

  # Without the native authorizer the Lambda's own JWT check is the only gate (it always runs).
  authorization_type   = var.create_jwt_authorizer ? "JWT" : "NONE"
  authorizer_id        = var.create_jwt_authorizer ? aws_apigatewayv2_authorizer.jwt[0].id : null
  authorization_scopes = var.create_jwt_authorizer ? each.value : null
}

resource "aws_apigatewayv2_route" "public" {
  for_each = local.public_routes

  #checkov:skip=CKV_AWS_309:Public by design: /health and /openapi.json reveal nothing tenant-specific; /callbacks/{job_id} is authenticated by the per-job HMAC signature the callbacks function verifies (a JWT would give the GPU side an identity).
  api_id             = aws_apigatewayv2_api.this.id
  route_key          = each.key
  target             = "integrations/${aws_apigatewayv2_integration.lambda[each.value].id}"
  authorization_type = "NONE"
}

resource "aws_cloudwatch_log_group" "api" {
  name              = local.names.log_groups.api
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn

  tags = var.tags
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.this.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_burst_limit   = var.api_throttling.burst_limit
    throttling_rate_limit    = var.api_throttling.rate_limit
    detailed_metrics_enabled = true
  }

  route_settings {
    route_key              = "POST /callbacks/{job_id}"
    throttling_burst_limit = var.callback_throttling.burst_limit
    throttling_rate_limit  = var.callback_throttling.rate_limit
  }

  # No headers in the access log: they carry bearer tokens and webhook signatures.
  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api.arn
    format = jsonencode({
      requestId          = "$context.requestId"
      requestTime        = "$context.requestTime"
      sourceIp           = "$context.identity.sourceIp"
      routeKey           = "$context.routeKey"
      status             = "$context.status"
      protocol           = "$context.protocol"
      responseLength     = "$context.responseLength"
      integrationLatency = "$context.integrationLatency"
      latency            = "$context.responseLatency"
      integrationError   = "$context.integrationErrorMessage"
      authorizerError    = "$context.authorizer.error"
      tenant             = "$context.authorizer.claims.${var.jwt.tenant_claim}"
    })
  }

  tags = var.tags

  depends_on = [aws_apigatewayv2_route.protected, aws_apigatewayv2_route.public]
}
