"""HTTP client for the Modal internal API.

Requests carry the proxy token as ``Modal-Key``/``Modal-Secret`` (Modal's proxy auth). Network
errors and 5xx answers are retried with full-jitter exponential backoff; 4xx answers are not,
because they mean the request or the token is wrong. ``POST /v1/jobs`` may reach Modal twice
when an answer is lost; the internal API keys spawns by ``job_id``, so a retry is harmless.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from aws.lambda_proxy.modal.exceptions import ModalRejectedError, ModalUnavailableError
from modal_service.contracts import CreateJobRequest, CreateJobResponse, JobStatusResponse

T = TypeVar("T", bound=BaseModel)


class ProxyToken(BaseModel):
    """The Modal proxy auth token pair, as stored in Secrets Manager."""

    token_id: str
    token_secret: str

    def headers(self) -> dict[str, str]:
        return {"Modal-Key": self.token_id, "Modal-Secret": self.token_secret}


class ModalClient:
    """``POST``/``GET``/``DELETE /v1/jobs`` with retries; one instance per container."""

    def __init__(
        self,
        base_url: str,
        *,
        token: Callable[[], ProxyToken | None],
        timeout_s: float,
        max_attempts: int,
        backoff_base_s: float,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._max_attempts = max_attempts
        self._backoff_base_s = backoff_base_s
        self._sleep = sleep
        self._http = http or httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 3.0)),
            follow_redirects=False,
        )

    def create_job(self, request: CreateJobRequest) -> CreateJobResponse:
        body = request.model_dump(mode="json")
        answer = self._call("POST", "/v1/jobs", CreateJobResponse, json=body)
        assert answer is not None  # a model was given
        return answer

    def get_job(self, call_id: str) -> JobStatusResponse:
        answer = self._call("GET", f"/v1/jobs/{quote(call_id, safe='')}", JobStatusResponse)
        assert answer is not None
        return answer

    def cancel_job(self, call_id: str) -> None:
        self._call("DELETE", f"/v1/jobs/{quote(call_id, safe='')}", None)

    def _call(self, method: str, path: str, model: type[T] | None, **kwargs: Any) -> T | None:
        token = self._token()
        headers = token.headers() if token else {}
        last_problem = "no attempt made"
        for attempt in range(1, self._max_attempts + 1):
            try:
                answer = self._http.request(
                    method, self._base_url + path, headers=headers, **kwargs
                )
            except httpx.HTTPError as exc:
                last_problem = f"{type(exc).__name__}"
            else:
                if answer.status_code < 300:
                    return self._parse(answer, model)
                if answer.status_code < 500 and answer.status_code != 429:
                    raise ModalRejectedError(
                        f"Modal answered {answer.status_code} to {method} /v1/jobs"
                    )
                last_problem = f"HTTP {answer.status_code}"
            if attempt < self._max_attempts:
                # Full jitter: spreads retries of many Lambdas hitting the same outage.
                self._sleep(random.uniform(0, self._backoff_base_s * 2 ** (attempt - 1)))  # noqa: S311
        raise ModalUnavailableError(
            f"Modal did not answer {method} after {self._max_attempts} attempts ({last_problem})"
        )

    @staticmethod
    def _parse(answer: httpx.Response, model: type[T] | None) -> T | None:
        if model is None:
            return None
        try:
            return model.model_validate_json(answer.content)
        except ValidationError:
            raise ModalRejectedError(
                f"Modal's answer does not match {model.__name__}", code="modal_contract_mismatch"
            ) from None
