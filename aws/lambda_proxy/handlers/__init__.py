"""Lambda entry points (Terraform references these names; keep them stable):

* ``aws.lambda_proxy.handlers.api.handler``: the public API (JWT),
* ``aws.lambda_proxy.handlers.callbacks.handler``: ``POST /callbacks/{job_id}`` from Modal
  (Standard Webhooks signature, no JWT),
* ``aws.lambda_proxy.handlers.reconciler.handler``: scheduled settlement of overdue jobs.
"""
