"""Render the batch state machine definition exactly as Terraform's ``templatefile`` does.

The template uses nothing but ``${name}`` interpolation of plain values, so this renderer can be
faithful in a few lines: strings are inserted as they are, numbers in their shortest form and
booleans as ``true``/``false``. Anything else in the template that Terraform would interpret
(``%{`` directives, ``$${``/``%%{`` escapes, expressions inside ``${...}``) is refused, so the
two renderers can never disagree silently. Unknown and missing variables are refused too, as
Terraform does.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

TEMPLATE_PATH = Path(__file__).with_name("batch.asl.json.tftpl")

_INTERPOLATION = re.compile(r"\$\{([^}]*)\}")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_DIRECTIVES = ("%{", "$${", "%%{")


class TemplateError(ValueError):
    """The template or the values do not fit the ``${name}``-only contract."""


class BatchTemplateValues(BaseModel):
    """The variables Terraform passes to ``templatefile`` (names are part of that contract).

    The prefix pattern keeps values safe inside ``States.Format`` strings and S3 keys.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    submit_queue_url: str = Field(min_length=8, pattern=r"^https?://[^\"'{}\\\s]+$")
    results_bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    results_prefix: str = Field(pattern=r"^([A-Za-z0-9!_.*()-]+/)*$", max_length=512)
    max_concurrency: int = Field(ge=1, le=10000)
    tolerated_failure_percentage: float = Field(ge=0, le=100)
    heartbeat_seconds: int = Field(ge=1, le=86400)
    task_timeout_seconds: int = Field(ge=1, le=31536000)

    @model_validator(mode="after")
    def _heartbeat_within_timeout(self) -> BatchTemplateValues:
        # Step Functions refuses a definition whose HeartbeatSeconds is not below TimeoutSeconds.
        if self.heartbeat_seconds >= self.task_timeout_seconds:
            raise ValueError("heartbeat_seconds must be less than task_timeout_seconds")
        return self


def _format(value: Any) -> str:
    """A value as Terraform's template interpolation writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    raise TemplateError(f"only strings, numbers and booleans can be interpolated, not {value!r}")


def render_template(template: str, values: dict[str, Any]) -> str:
    """Substitute ``${name}`` in ``template``; refuse anything Terraform would read differently."""
    for directive in _DIRECTIVES:
        if directive in template:
            raise TemplateError(f"the template may use ${{name}} only; found {directive!r}")
    used = set()
    for match in _INTERPOLATION.finditer(template):
        name = match.group(1)
        if not _NAME.match(name):
            raise TemplateError(f"only plain variable names may be interpolated, not ${{{name}}}")
        used.add(name)
    missing = sorted(used - values.keys())
    if missing:
        raise TemplateError(f"the template needs values for {missing}")
    unknown = sorted(values.keys() - used)
    if unknown:
        raise TemplateError(f"the template does not use {unknown}")
    return _INTERPOLATION.sub(lambda match: _format(values[match.group(1)]), template)


def render_definition(values: BatchTemplateValues | dict[str, Any]) -> dict[str, Any]:
    """The batch state machine definition for ``values``, parsed (it must be valid JSON)."""
    checked = BatchTemplateValues.model_validate(values)
    text = render_template(TEMPLATE_PATH.read_text(), checked.model_dump())
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TemplateError(f"the rendered definition is not JSON: {exc}") from None
