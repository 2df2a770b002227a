"""Powertools Logger, Metrics and Tracer shared by every module of the proxy.

Never log a token, a pre-signed URL, a callback or webhook secret, or a request body: events
carry JWTs and answers carry signed URLs, so ``log_event`` stays off and modules log ids and
codes only.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

# Powertools' own variables win, so Terraform (and the local stack) name the service and the
# metrics namespace in one place; the defaults are what Terraform sets.
SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "multitalk-video-api"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "MultiTalkVideoApi"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)
