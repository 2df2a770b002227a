"""Powertools Logger, Metrics and Tracer shared by every module of the proxy.

Never log a token, a pre-signed URL, a callback or webhook secret, or a request body: events
carry JWTs and answers carry signed URLs, so ``log_event`` stays off and modules log ids and
codes only.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "multitalk-video-api"
NAMESPACE = "MultiTalkVideoApi"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)
