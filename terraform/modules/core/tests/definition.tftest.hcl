# The batch state machine definition, rendered from aws/step_functions/batch.asl.json.tftpl with
# the module's variables. State names belong to that template, so these checks find states by
# what they are (a Distributed Map, a task waiting on a token) rather than by name.

variables {
  name        = "mt-asl"
  region      = "us-east-1"
  account_id  = "123456789012"
  kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

  data_bucket_name = "mt-asl-data"
  tenants          = { acme = {} }
  jwt = {
    issuer   = "https://idp.example.com/"
    audience = "multitalk-video-api"
    jwks_url = "https://idp.example.com/.well-known/jwks.json"
  }
  modal_api_url = "https://example--multitalk-api.modal.run"
  api_endpoint  = "https://abc123.execute-api.us-east-1.amazonaws.com"

  batch = {
    max_concurrency              = 7
    tolerated_failure_percentage = 12.5
    heartbeat_seconds            = 300
    task_timeout_seconds         = 2700
  }
}

run "definition_is_rendered_json" {
  command = plan

  assert {
    condition     = output.state_machine_definition != null && can(jsondecode(output.state_machine_definition).StartAt)
    error_message = "the template renders to ASL JSON"
  }

  assert {
    condition     = !strcontains(output.state_machine_definition, "$${")
    error_message = "no template variable is left unrendered"
  }
}

run "distributed_map_settings" {
  command = plan

  assert {
    condition = anytrue([
      for s in values(jsondecode(output.state_machine_definition).States) :
      try(s.ItemProcessor.ProcessorConfig.Mode, "") == "DISTRIBUTED" && try(s.ItemProcessor.ProcessorConfig.ExecutionType, "") == "STANDARD"
    ])
    error_message = "items run in a Distributed Map of STANDARD children (callbacks need .waitForTaskToken)"
  }

  # The numbers arrive as JSON numbers wherever the template puts them.
  assert {
    condition     = strcontains(jsonencode(jsondecode(output.state_machine_definition)), "\"max_concurrency\":7") && strcontains(jsonencode(jsondecode(output.state_machine_definition)), "\"tolerated_failure_percentage\":12.5")
    error_message = "max_concurrency and tolerated_failure_percentage are rendered as numbers"
  }

  assert {
    condition = anytrue(flatten([
      for s in values(jsondecode(output.state_machine_definition).States) : [
        for t in values(try(s.ItemProcessor.States, {})) :
        try(t.HeartbeatSeconds, 0) == 300 && try(t.TimeoutSeconds, 0) == 2700 && endswith(try(t.Resource, ""), ".waitForTaskToken")
      ]
    ]))
    error_message = "each item waits on its task token with the configured heartbeat and timeout"
  }
}

run "definition_names_only_this_deployment" {
  command = plan

  assert {
    condition = alltrue([
      for url in regexall("\"QueueUrl\":\"([^\"]+)\"", jsonencode(jsondecode(output.state_machine_definition))) :
      url[0] == "https://sqs.us-east-1.amazonaws.com/123456789012/mt-asl-batch-submit"
    ]) && length(regexall("\"QueueUrl\"", output.state_machine_definition)) > 0
    error_message = "every task sends to this deployment's submit queue"
  }

  assert {
    condition = alltrue([
      for b in regexall("\"Bucket\":\"([^\"]+)\"", jsonencode(jsondecode(output.state_machine_definition))) : b[0] == "mt-asl-data"
    ])
    error_message = "results go to the data bucket only"
  }

  assert {
    condition     = strcontains(output.state_machine_definition, "batch-results/")
    error_message = "results are written under the results prefix"
  }
}

run "missing_template_gives_null" {
  command = plan

  variables {
    state_machine_template_path = "./does-not-exist.asl.json.tftpl"
  }

  # The root module's state machine refuses a null definition with a precondition.
  assert {
    condition     = output.state_machine_definition == null
    error_message = "a missing template yields null, never a half-rendered definition"
  }
}
