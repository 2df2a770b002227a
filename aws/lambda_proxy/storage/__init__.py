"""S3: strict ``s3://`` parsing, tenant location policy, object checks and pre-signing."""
