"""A batch of five, one of them broken, over the whole local stack, started and read with the
project CLI: Step Functions (the Terraform template) -> SQS -> event source -> the real
batch_submit handler -> internal API -> worker processes (``tiny``) -> pre-signed PUT -> signed
callbacks -> SendTaskSuccess/SendTaskFailure -> the summary."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scripts import samples
from scripts.cli import app
from scripts.local_stack import StackInfo, product
from tests.e2e.test_jobs import probe

pytestmark = pytest.mark.stack
GOOD = ("alpha", "bravo", "charlie", "delta")


def _cli(stack: StackInfo, *args: str) -> dict:
    """Run the CLI with the stack's endpoints as the AWS environment; its JSON answer."""
    result = CliRunner().invoke(app, list(args), env=stack.env(), terminal_width=1000)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_batch_of_five_with_one_broken_item(
    stack: StackInfo, running_product: product.ProductInfo, tmp_path: Path
) -> None:
    s3, bucket = stack.s3_client(), stack.buckets["data"]
    run = uuid.uuid4().hex[:8]
    inputs, outputs = f"tenants/acme/inputs/batch-{run}/", f"tenants/acme/outputs/batch-{run}/"
    for seed, name in enumerate(GOOD):
        wav = samples.write_speech_wav(tmp_path / f"{name}.wav", duration_s=1.0, seed=seed)
        s3.upload_file(str(wav), bucket, inputs + wav.name, ExtraArgs={"ContentType": "audio/wav"})
    s3.put_object(
        Bucket=bucket, Key=inputs + "broken.wav", Body=b"RIFF not audio", ContentType="audio/wav"
    )
    portrait = samples.draw_portrait(tmp_path / "face.png", size=(256, 256))
    s3.upload_file(
        str(portrait), bucket, f"tenants/acme/inputs/face-{run}.png", {"ContentType": "image/png"}
    )
    batch = tmp_path / "batch.json"
    batch.write_text(
        json.dumps(
            {
                "tenant_id": "acme",
                "source": {
                    "prefix": f"s3://{bucket}/{inputs}",
                    "reference_image_s3_url": f"s3://{bucket}/tenants/acme/inputs/face-{run}.png",
                },
                "output": {"s3_bucket": bucket, "s3_prefix": outputs},
                "options": {"model": "tiny", "seed": 3, "video_length": 1},
            }
        )
    )

    arn = running_product.state_machine_arn
    started = _cli(stack, "batch", "start", "--state-machine-arn", arn, str(batch))
    execution = started["executionArn"]
    deadline = time.monotonic() + 300
    view = _cli(stack, "batch", "status", execution)
    while view["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(1)
        view = _cli(stack, "batch", "status", execution)

    assert view["status"] == "SUCCEEDED", view
    summary = view["summary"]
    assert (summary["total"], summary["succeeded"], summary["failed"]) == (5, 4, 1), summary
    (failed,) = summary["failed_items"]
    assert failed["id"].endswith("broken.wav")
    assert failed["error"] == "audio_invalid"
    stored = json.loads(
        s3.get_object(Bucket=bucket, Key=summary["results"]["summary"].split("/", 3)[3])[
            "Body"
        ].read()
    )
    assert stored["succeeded"] == 4

    listed = s3.list_objects_v2(Bucket=bucket, Prefix=outputs).get("Contents", [])
    videos = sorted(entry["Key"] for entry in listed)
    assert [Path(key).stem for key in videos] == list(GOOD), videos
    for key in videos:
        local = tmp_path / Path(key).name
        s3.download_file(bucket, key, str(local))
        frames, seconds, streams = probe(local)
        assert frames >= 25
        assert seconds >= 0.9
        assert "Audio: aac" in streams
