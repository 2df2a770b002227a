"""One job, start to finish: fetch, check, render, upload, report.

The worker sees only what :class:`~modal_service.contracts.CreateJobRequest` carries: pre-signed
URLs, a per-job callback secret and a deadline. Every outcome, including a crash of the code
below, ends as a :class:`JobOutcome` with a stable error code, a final signed callback and an
empty temporary directory. With a checkpoint directory configured, the render records each
finished clip there, a retry of a crashed attempt resumes after the last one, and the job's
checkpoint is removed once it ends.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from modal_service.config import WorkerSettings
from modal_service.contracts import (
    CallState,
    CreateJobRequest,
    ErrorCode,
    GpuUsage,
    JobError,
    JobFailed,
    JobInputs,
    JobOutput,
    JobResult,
    JobStarted,
    JobSucceeded,
    UrlRefreshRequested,
)
from modal_service.url_policy import UrlPolicyError, check_transfer_urls
from modal_service.worker.callbacks import (
    CallbackClient,
    CallbackRefused,
    CallbackUndelivered,
    DeliveryPolicy,
)
from modal_service.worker.checkpoints import JobCheckpoints, SharedVolume
from modal_service.worker.control import JobControl
from modal_service.worker.errors import UrlExpiredError, WorkerError
from modal_service.worker.gpu_usage import GpuReader, GpuSampler, account, nvml_reader
from modal_service.worker.outcome import JobOutcome
from modal_service.worker.progress import ProgressReporter
from modal_service.worker.renderers import Renderer
from modal_service.worker.transfer import TransferPolicy, digest_file, download, upload

logger = logging.getLogger(__name__)

RendererSource = Callable[[str], Renderer]
"""Gives the renderer for a preset name (``tiny``, ``multitalk-14b``)."""

_RETRYABLE_RENDER_CODES = {ErrorCode.MODEL_UNAVAILABLE, ErrorCode.INTERNAL}


def run_job(
    request: CreateJobRequest,
    *,
    renderers: RendererSource,
    settings: WorkerSettings,
    control: JobControl | None = None,
    call_id: str | None = None,
    http: httpx.Client | None = None,
    interrupts: tuple[type[BaseException], ...] = (),
    checkpoint_volume: SharedVolume | None = None,
) -> JobOutcome:
    """Run one job and return its outcome; never raises for a job failure.

    ``interrupts`` names exceptions by which a platform cancels the call from outside (Modal's
    ``InputCancellation``): the job reports itself cancelled, cleans up, and re-raises them.
    ``checkpoint_volume``: the Volume mounted at ``settings.checkpoint_dir``, if it is one.
    """
    client = http or httpx.Client(follow_redirects=False)
    try:
        return _JobRun(
            request,
            renderers=renderers,
            settings=settings,
            control=control or JobControl(request.deadline),
            call_id=call_id,
            client=client,
            checkpoint_volume=checkpoint_volume,
        ).run(interrupts)
    finally:
        if http is None:
            client.close()


class _JobRun:
    def __init__(
        self,
        request: CreateJobRequest,
        *,
        renderers: RendererSource,
        settings: WorkerSettings,
        control: JobControl,
        call_id: str | None,
        client: httpx.Client,
        checkpoint_volume: SharedVolume | None,
    ) -> None:
        self.request = request
        self.job_id = request.job_id
        self.renderers = renderers
        self.settings = settings
        self.control = control
        self.call_id = call_id
        self.client = client
        self.callbacks = CallbackClient(
            request.callback, client, timeout_s=settings.callback_timeout_s
        )
        self.transfer_policy = TransferPolicy(
            attempts=settings.transfer_attempts,
            backoff_s=settings.transfer_backoff_s,
            connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.read_timeout_s,
        )
        # The URLs in use; replaced once if they expire.
        self.inputs: JobInputs = request.inputs
        self.output: JobOutput = request.output
        self.refreshed = False
        self.timings: dict[str, float] = {}
        self.checkpoints = None
        if settings.checkpoint_dir is not None:
            self.checkpoints = JobCheckpoints(
                settings.checkpoint_dir,
                self.job_id,
                ttl_s=settings.checkpoint_ttl_s,
                volume=checkpoint_volume,
            )

    # --- 1. Lifecycle: every path ends in one outcome, cleaned up and reported ---------------

    def run(self, interrupts: tuple[type[BaseException], ...]) -> JobOutcome:
        started = time.monotonic()
        workdir = Path(tempfile.mkdtemp(prefix="multitalk-job-", dir=self.settings.tmp_dir))
        reporter: ProgressReporter | None = None
        interruption: BaseException | None = None
        try:
            self.control.check()
            self._send_best_effort(JobStarted(job_id=self.job_id, call_id=self.call_id))
            reporter = ProgressReporter(
                self.job_id, self._send_progress, interval_s=self.settings.progress_interval_s
            )
            result = self._execute(workdir, reporter, started)
            outcome = JobOutcome(job_id=self.job_id, state=CallState.SUCCEEDED, result=result)
        except WorkerError as error:
            outcome = self._failed(error.to_job_error())
        except Exception:
            logger.exception("job %s failed unexpectedly", self.job_id)
            outcome = self._failed(
                JobError(
                    code=ErrorCode.INTERNAL,
                    message="the worker failed unexpectedly",
                    retryable=True,
                )
            )
        except BaseException as error:
            if not isinstance(error, interrupts):
                raise
            interruption = error
            outcome = self._failed(
                JobError(code=ErrorCode.CANCELLED, message="the job was cancelled", retryable=False)
            )
        finally:
            if reporter is not None:
                reporter.close()
            shutil.rmtree(workdir, ignore_errors=True)
        outcome = self._deliver_final(outcome)
        if self.checkpoints is not None:
            # After the final callback: a crash before it still finds every clip on the retry.
            self.checkpoints.discard()
        if interruption is not None:
            raise interruption
        return outcome

    def _failed(self, error: JobError) -> JobOutcome:
        state = CallState.CANCELLED if error.code == ErrorCode.CANCELLED else CallState.FAILED
        logger.info("job %s ended: %s (%s)", self.job_id, error.code, error.message)
        return JobOutcome(job_id=self.job_id, state=state, error=error)

    # --- 2. The work ----------------------------------------------------------------------

    def _execute(self, workdir: Path, reporter: ProgressReporter, started: float) -> JobResult:
        # 2a. Inputs, through the GET URLs (refreshed once if they expired).
        mark = time.monotonic()
        fetched: dict[str, Path] = {}
        self._with_refresh(lambda: self._download_inputs(workdir, fetched, reporter))
        self.timings["download_s"] = time.monotonic() - mark

        # 2b. Render: the media is checked first, by content, before any model is asked for.
        audio_paths = [fetched[f"audio{index}"] for index in range(len(self.inputs.audio_urls))]
        source_path = fetched["video"] if "video" in fetched else fetched["image"]

        reader = nvml_reader()
        video_path, render, gpu = self._render(
            audio_paths, source_path, workdir / "output.mp4", reporter, reader
        )
        held = account(
            reader,
            self.timings["render_s"],
            gpu_hour_usd=self.settings.gpu_hour_usd,
            gpu_container=self.settings.mode == "modal",
        )

        # 2c. Output, through the PUT URL (refreshed once if it expired), verified.
        digest = digest_file(video_path)
        if digest.size == 0:
            raise WorkerError(
                ErrorCode.INTERNAL, "the renderer wrote an empty file", retryable=True
            )
        if digest.size > self.output.max_bytes:
            raise WorkerError(
                ErrorCode.UPLOAD_FAILED,
                f"the MP4 ({digest.size} bytes) exceeds the output limit",
                retryable=False,
            )
        mark = time.monotonic()
        reporter.update("uploading", 0, digest.size)
        self._with_refresh(
            lambda: upload(
                self.client,
                self.output.put_url,
                video_path,
                content_type=self.output.content_type,
                digest=digest,
                policy=self.transfer_policy,
                control=self.control,
                progress=lambda done, total: reporter.update("uploading", done, total),
            )
        )
        self.timings["upload_s"] = time.monotonic() - mark
        self.timings["total_s"] = time.monotonic() - started
        render_timings = {
            str(name): float(seconds) for name, seconds in dict(render.timings_s or {}).items()
        }
        return JobResult(
            size_bytes=digest.size,
            sha256=digest.sha256_hex,
            duration_s=float(render.duration_s),
            frames=int(render.frames),
            fps=float(render.fps),
            width=int(render.width),
            height=int(render.height),
            model=str(render.model),
            timings_s={**render_timings, **self.timings},
            audio_durations_s=[float(seconds) for seconds in render.audio_durations_s],
            notes=[str(note) for note in render.notes],
            gpu=gpu,
            render_device=held.render_device,
            gpu_seconds=held.gpu_seconds,
            estimated_cost_usd=held.estimated_cost_usd,
        )

    def _download_inputs(
        self, workdir: Path, fetched: dict[str, Path], reporter: ProgressReporter
    ) -> None:
        # Inputs already fetched before a refresh are not fetched again.
        wanted = [
            (f"audio{index}", url, self.inputs.max_audio_bytes, self.inputs.audio_label(index))
            for index, url in enumerate(self.inputs.audio_urls)
        ]
        if self.inputs.video_url is not None:
            inputs = self.inputs
            wanted.append(("video", inputs.video_url, inputs.max_video_bytes, inputs.video_label))
        else:
            wanted.append(
                (
                    "image",
                    self.inputs.image_url,
                    self.inputs.max_image_bytes,
                    self.inputs.image_label,
                )
            )
        for position, (name, url, max_bytes, what) in enumerate(wanted):
            if name in fetched:
                continue
            reporter.update("downloading", position, len(wanted))
            dest = workdir / f"{name}.download"
            download(
                self.client,
                url,
                dest,
                what=what,
                max_bytes=max_bytes,
                policy=self.transfer_policy,
                control=self.control,
            )
            fetched[name] = dest
        reporter.update("downloading", len(wanted), len(wanted))

    def _render(
        self,
        audio_paths: list[Path],
        source_path: Path,
        out_path: Path,
        reporter: ProgressReporter,
        gpu_reader: GpuReader | None,
    ) -> tuple[Path, Any, GpuUsage | None]:
        # Imported here: the model stack (torch) loads only in processes that render.
        from modal_service.multitalk import RenderCancelled, RenderError, RenderSpec
        from modal_service.multitalk.checkpoint import CheckpointPlace
        from modal_service.multitalk.inputs import prepare_inputs

        params = self.request.params
        boxes = None
        if params.bounding_boxes is not None:
            boxes = [(b.top, b.left, b.bottom, b.right) for b in params.bounding_boxes]
        spec = RenderSpec(
            audio_paths=audio_paths,
            image_path=None if self.inputs.video_url else source_path,
            video_path=source_path if self.inputs.video_url else None,
            video_label=self.inputs.video_label,
            max_video_s=self.inputs.max_video_s,
            max_video_bytes=self.inputs.max_video_bytes,
            prompt=params.prompt,
            resolution=params.resolution,
            max_duration_s=params.max_duration_s,
            max_audio_s=self.inputs.max_audio_s,
            audio_labels=[self.inputs.audio_label(index) for index in range(len(audio_paths))],
            image_label=self.inputs.image_label,
            speed=params.speed,
            audio_type=params.audio_type,
            bounding_boxes=boxes,
            seed=params.seed,
            sample_steps=params.sample_steps,
        )
        self.control.check()
        try:
            # The media first: a refused file never waits for (or holds) a model.
            mark = time.monotonic()
            reporter.update("checking_inputs", 0, 1)
            inputs = prepare_inputs(spec, out_path.parent)
            self.timings["inputs_s"] = time.monotonic() - mark
            self.control.check()
            mark = time.monotonic()
            reporter.update("loading_model", 0, 1)  # instant on Modal (loaded at container start)
            renderer = self.renderers(params.model)
            self.timings["model_load_s"] = time.monotonic() - mark
            checkpoint = None
            if self.checkpoints is not None and self.checkpoints.open():
                checkpoint = CheckpointPlace(self.checkpoints.directory, self.checkpoints.commit)
            # The GPUs are watched for exactly the render: the stages before it leave them idle.
            mark = time.monotonic()
            with GpuSampler(gpu_reader) as sampler:
                render = renderer.render(
                    spec,
                    out_path,
                    progress=reporter.update,
                    should_cancel=self.control.should_stop,
                    inputs=inputs,
                    checkpoint=checkpoint,
                )
            self.timings["render_s"] = time.monotonic() - mark
        except RenderCancelled as cancelled:
            self.control.check()  # names the reason: cancelled or deadline
            raise WorkerError(
                ErrorCode.CANCELLED, "the render was cancelled", retryable=False
            ) from cancelled
        except RenderError as error:
            raise _render_failure(error) from error
        self.control.check()
        return Path(render.video_path), render, sampler.summary()

    # --- 3. Expired URLs: one signed refresh request, then the same step again -------------

    def _with_refresh(self, step: Callable[[], None]) -> None:
        try:
            step()
        except UrlExpiredError:
            if self.refreshed:
                raise
            self._refresh_urls()
            step()

    def _refresh_urls(self) -> None:
        self.refreshed = True
        logger.info("job %s: a pre-signed URL expired, asking for fresh ones", self.job_id)
        fresh = self.callbacks.request_url_refresh(
            UrlRefreshRequested(job_id=self.job_id), self._policy(window_s=120.0)
        )
        if len(fresh.inputs.audio_urls) != len(self.inputs.audio_urls):
            raise WorkerError(
                ErrorCode.URL_EXPIRED,
                "the URL refresh answer names a different number of audio inputs",
                retryable=True,
            )
        try:
            check_transfer_urls(
                fresh.inputs, fresh.output, allow_loopback_http=self.settings.allow_loopback_http
            )
        except UrlPolicyError as error:
            raise WorkerError(
                ErrorCode.URL_EXPIRED,
                f"the URL refresh answer was refused: {error}",
                retryable=True,
            ) from error
        self.inputs, self.output = fresh.inputs, fresh.output

    # --- 4. Callbacks -----------------------------------------------------------------------

    def _policy(self, *, window_s: float) -> DeliveryPolicy:
        return DeliveryPolicy(
            window_s=window_s,
            initial_delay_s=self.settings.callback_initial_delay_s,
            max_delay_s=self.settings.callback_max_delay_s,
        )

    def _send_progress(self, event: Any) -> None:
        self.callbacks.send(event, self._policy(window_s=0.0))

    def _send_best_effort(self, event: Any) -> None:
        # A few quick tries: job.started is informative, and the job must not wait on it.
        try:
            self.callbacks.send(event, self._policy(window_s=5.0))
        except (CallbackRefused, CallbackUndelivered) as error:
            logger.warning("job %s: %s", self.job_id, error)

    def _deliver_final(self, outcome: JobOutcome) -> JobOutcome:
        if outcome.result is not None:
            event: Any = JobSucceeded(job_id=self.job_id, result=outcome.result)
        else:
            assert outcome.error is not None
            event = JobFailed(job_id=self.job_id, error=outcome.error)
        window_s = self.settings.final_callback_window_s
        if outcome.state is CallState.CANCELLED:
            window_s = min(window_s, self.settings.cancelled_callback_window_s)
        try:
            self.callbacks.send(event, self._policy(window_s=window_s))
        except (CallbackRefused, CallbackUndelivered) as error:
            # The outcome is still the call's return value: GET /v1/jobs/{call_id} reports it.
            logger.error("job %s: final callback lost: %s", self.job_id, error)
            return outcome
        return outcome.model_copy(update={"callback_delivered": True})


def _render_failure(error: Exception) -> WorkerError:
    try:
        code = ErrorCode(str(getattr(error, "code", ErrorCode.INTERNAL)))
    except ValueError:
        code = ErrorCode.INTERNAL
    return WorkerError(
        code, str(error) or type(error).__name__, retryable=code in _RETRYABLE_RENDER_CODES
    )
