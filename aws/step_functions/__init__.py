"""The batch: a whole S3 prefix or manifest to videos, on Step Functions.

``batch.asl.json.tftpl`` is the state machine (rendered by Terraform's ``templatefile`` and by
:mod:`.render` with the same values): *Plan batch* -> Distributed Map *Render each item* (one
``sqs:sendMessage.waitForTaskToken`` task per item, completed by the job's callbacks) ->
*Summarize* -> succeed, or fail with the reason. Every waiting state is answered by
:mod:`.handlers.batch_submit`, which consumes the submit queue.
"""
