"""The emulators do what the design relies on: if one of these fails, later tests prove nothing."""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import jwt
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import rsa

from scripts.local_stack import StackInfo

pytestmark = pytest.mark.stack


def _put(stack: StackInfo, key: str, body: bytes, content_type: str = "audio/wav") -> None:
    stack.s3_client().put_object(
        Bucket=stack.buckets["data"], Key=key, Body=body, ContentType=content_type
    )


def _presign(stack: StackInfo, method: str, key: str, expires_in: int = 60, **params: str) -> str:
    return stack.s3_client().generate_presigned_url(
        method,
        Params={"Bucket": stack.buckets["data"], "Key": key, **params},
        ExpiresIn=expires_in,
    )


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


# -- S3: pre-signed URLs are checked for real ---------------------------------------------------


def test_presigned_get_is_sigv4_and_works(stack: StackInfo) -> None:
    key = f"tests/{uuid.uuid4()}.wav"
    _put(stack, key, b"RIFF-audio")
    url = _presign(stack, "get_object", key)
    assert "X-Amz-Signature=" in url
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == b"RIFF-audio"


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda url: url.replace(".wav", ".mp3"), id="other-key"),
        pytest.param(lambda url: _with_query(url, **{"X-Amz-Signature": "0" * 64}), id="signature"),
        pytest.param(lambda url: _with_query(url, **{"X-Amz-Expires": "604800"}), id="expiry"),
    ],
)
def test_tampered_presigned_get_is_refused(stack: StackInfo, tamper) -> None:
    key = f"tests/{uuid.uuid4()}.wav"
    _put(stack, key, b"secret-audio")
    _put(stack, key.replace(".wav", ".mp3"), b"other-audio")
    response = httpx.get(tamper(_presign(stack, "get_object", key)))
    assert response.status_code == 403
    assert b"secret-audio" not in response.content


def test_expired_presigned_get_is_refused(stack: StackInfo) -> None:
    key = f"tests/{uuid.uuid4()}.wav"
    _put(stack, key, b"audio")
    url = _presign(stack, "get_object", key, expires_in=1)
    time.sleep(2.1)
    response = httpx.get(url)
    assert response.status_code == 403
    assert b"expired" in response.content.lower()


def test_unsigned_request_is_refused(stack: StackInfo) -> None:
    key = f"tests/{uuid.uuid4()}.wav"
    _put(stack, key, b"audio")
    response = httpx.get(f"{stack.s3_endpoint}/{stack.buckets['data']}/{key}")
    assert response.status_code == 403
    put = httpx.put(f"{stack.s3_endpoint}/{stack.buckets['data']}/tests/anon.bin", content=b"x")
    assert put.status_code == 403


def test_presigned_put_enforces_the_signed_content_type(stack: StackInfo) -> None:
    key = f"tests/{uuid.uuid4()}.mp4"
    url = _presign(stack, "put_object", key, ContentType="video/mp4")
    wrong = httpx.put(url, content=b"video", headers={"Content-Type": "text/html"})
    assert wrong.status_code == 403
    s3 = stack.s3_client()
    with pytest.raises(ClientError):
        s3.head_object(Bucket=stack.buckets["data"], Key=key)
    right = httpx.put(url, content=b"video", headers={"Content-Type": "video/mp4"})
    assert right.status_code == 200
    head = s3.head_object(Bucket=stack.buckets["data"], Key=key)
    assert head["ContentType"] == "video/mp4"
    assert head["ContentLength"] == 5


def test_put_url_cannot_be_used_to_read(stack: StackInfo) -> None:
    key = f"tests/{uuid.uuid4()}.mp4"
    _put(stack, key, b"existing", content_type="video/mp4")
    url = _presign(stack, "put_object", key, ContentType="video/mp4")
    assert httpx.get(url).status_code == 403


# -- DynamoDB: conditional writes are real -------------------------------------------------------


def test_conditional_write_is_refused(stack: StackInfo) -> None:
    dynamodb = stack.client("dynamodb")
    table = stack.tables["jobs"]
    job_id = f"job_{uuid.uuid4().hex[:26]}"
    item = {"job_id": {"S": job_id}, "status": {"S": "queued"}}
    dynamodb.put_item(
        TableName=table, Item=item, ConditionExpression="attribute_not_exists(job_id)"
    )
    with pytest.raises(ClientError) as duplicate:
        dynamodb.put_item(
            TableName=table, Item=item, ConditionExpression="attribute_not_exists(job_id)"
        )
    assert duplicate.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    dynamodb.update_item(
        TableName=table,
        Key={"job_id": {"S": job_id}},
        UpdateExpression="SET #s = :new",
        ConditionExpression="#s = :old",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":new": {"S": "succeeded"}, ":old": {"S": "queued"}},
    )
    with pytest.raises(ClientError) as final:
        dynamodb.update_item(
            TableName=table,
            Key={"job_id": {"S": job_id}},
            UpdateExpression="SET #s = :new",
            ConditionExpression="#s = :old",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":new": {"S": "failed"}, ":old": {"S": "queued"}},
        )
    assert final.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    stored = dynamodb.get_item(TableName=table, Key={"job_id": {"S": job_id}})["Item"]
    assert stored["status"]["S"] == "succeeded"


# -- Step Functions: definitions execute, task tokens complete, S3 reads see the data plane ------

ROLE_ARN = "arn:aws:iam::123456789012:role/local-stack-tests"


def _wait_for_execution(stack: StackInfo, arn: str, timeout_s: float = 20.0) -> dict:
    sfn = stack.client("stepfunctions")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        execution = sfn.describe_execution(executionArn=arn)
        if execution["status"] != "RUNNING":
            return execution
        time.sleep(0.2)
    raise AssertionError(f"execution still running after {timeout_s} s")


def _receive_one(stack: StackInfo, queue_url: str, timeout_s: float = 15.0) -> dict:
    sqs = stack.client("sqs")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", [])
        if messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
            return json.loads(messages[0]["Body"])
    raise AssertionError("no message reached the queue")


def test_task_token_execution_completes_after_send_task_success(stack: StackInfo) -> None:
    sqs = stack.client("sqs")
    queue_url = sqs.create_queue(QueueName=f"token-test-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    definition = {
        "StartAt": "Wait for worker",
        "States": {
            "Wait for worker": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {
                    "QueueUrl": queue_url,
                    "MessageBody": {"item.$": "$.item", "token.$": "$$.Task.Token"},
                },
                "TimeoutSeconds": 60,
                "End": True,
            }
        },
    }
    sfn = stack.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"token-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=ROLE_ARN
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"item": "a.wav"}))
    message = _receive_one(stack, queue_url)
    assert message["item"] == "a.wav"
    assert sfn.describe_execution(executionArn=execution["executionArn"])["status"] == "RUNNING"
    sfn.send_task_success(taskToken=message["token"], output=json.dumps({"video": "a.mp4"}))
    finished = _wait_for_execution(stack, execution["executionArn"])
    assert finished["status"] == "SUCCEEDED"
    assert json.loads(finished["output"]) == {"video": "a.mp4"}


def test_distributed_map_reads_the_strict_s3(stack: StackInfo) -> None:
    prefix = f"tests/batch-{uuid.uuid4().hex[:8]}/"
    for name in ("one.wav", "two.wav", "three.wav"):
        _put(stack, prefix + name, b"audio")
    definition = {
        "StartAt": "Each file",
        "States": {
            "Each file": {
                "Type": "Map",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:listObjectsV2",
                    "Parameters": {"Bucket": stack.buckets["data"], "Prefix": prefix},
                },
                "ItemSelector": {"key.$": "$$.Map.Item.Value.Key"},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Name",
                    "States": {"Name": {"Type": "Pass", "End": True}},
                },
                "MaxConcurrency": 2,
                "End": True,
            }
        },
    }
    sfn = stack.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"dmap-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=ROLE_ARN
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input="{}")
    finished = _wait_for_execution(stack, execution["executionArn"])
    assert finished["status"] == "SUCCEEDED", finished
    keys = sorted(item["key"] for item in json.loads(finished["output"]))
    assert keys == sorted(prefix + name for name in ("one.wav", "two.wav", "three.wav"))


# -- JWT: dev tokens verify against the JWKS served over HTTP ------------------------------------


def test_dev_token_verifies_against_served_jwks(stack: StackInfo) -> None:
    token = stack.mint_token("acme", ["videos:read"])
    signing_key = jwt.PyJWKClient(stack.jwks_url).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        signing_key.key,
        algorithms=["RS256", "ES256"],
        audience=stack.audience,
        issuer=stack.issuer,
        options={"require": ["exp", "iat", "nbf", "iss", "aud"]},
    )
    assert claims[stack.tenant_claim] == "acme"
    assert claims["scope"] == "videos:read"


def test_es256_dev_token_verifies_too(stack: StackInfo) -> None:
    token = stack.mint_token("acme", ["videos:write"], algorithm="ES256")
    signing_key = jwt.PyJWKClient(stack.jwks_url).get_signing_key_from_jwt(token)
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    claims = jwt.decode(token, signing_key.key, algorithms=["ES256"], audience=stack.audience)
    assert claims[stack.tenant_claim] == "acme"


def test_token_signed_by_another_key_is_rejected(stack: StackInfo) -> None:
    genuine = stack.mint_token("acme", ["videos:read"])
    claims = jwt.decode(genuine, options={"verify_signature": False})
    impostor_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        claims, impostor_key, algorithm="RS256", headers=jwt.get_unverified_header(genuine)
    )
    signing_key = jwt.PyJWKClient(stack.jwks_url).get_signing_key_from_jwt(forged)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, signing_key.key, algorithms=["RS256"], audience=stack.audience)
