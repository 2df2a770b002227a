terraform {
  # No provider on purpose: everything here is pure logic (names, ARNs, IAM policy documents,
  # the state machine definition, the Lambda environment), so `terraform test` runs it for real
  # on any machine, registry access or not.
  required_version = ">= 1.7"
}
