"""Caller webhooks: address policy (SSRF defence), Standard Webhooks signing, delivery."""
