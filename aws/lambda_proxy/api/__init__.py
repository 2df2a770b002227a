"""The public HTTP API: request/response models, routes and the resolver that joins them."""
