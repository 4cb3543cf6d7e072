"""Request bodies (pydantic): what the OpenAPI document shows and FastAPI validates. Unknown
fields are refused, so that a misspelt one is a 422 naming it rather than silently ignored.

Answers are plain JSON built in :mod:`gefion.api.views`, not models: a job list of 10,000
entries is serialized once, not validated field by field.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubmitBody(_Body):
    """A batch submission, as ``sbatch`` takes it: the script's text (None with ``--wrap``
    in ``argv``), the flags before the script, and the submitter's context."""

    script: str | None = Field(None, description="the batch script's text")
    argv: list[str] = Field(default_factory=list,
                            description="sbatch flags given before the script")
    env: dict[str, str] = Field(default_factory=dict,
                                description="the submitter's environment (never echoed back)")
    cwd: str = Field(description="the submit directory (absolute)", min_length=1)
    user: str | None = Field(None, min_length=1,
                             description="whom the job runs as: leave it out (yourself); "
                                         "another user only for an admin")
    source: str = Field("<script>", description="the script's path, for messages")
    script_args: list[str] = Field(default_factory=list,
                                   description="arguments after the script")
    test_only: bool = Field(False, description="parse and validate only; submit nothing")


#: The most submissions one batch request may carry.
MAX_BATCH = 1_000


class SubmitBatchBody(_Body):
    """Several submissions in one request, committed together, all or nothing (as Armada's
    and Kubernetes' batch APIs): the way for a workflow engine or a sweep to submit many
    jobs at once."""

    submissions: list[SubmitBody] = Field(min_length=1, max_length=MAX_BATCH,
                                          description="the submissions, as POST /v1/jobs "
                                                      "takes each (test_only not allowed)")


#: The OpenAPI request body of ``POST /v1/jobs/batch``, which reads its own body (below);
#: its items refer to ``SubmitBody``, the schema of ``POST /v1/jobs``.
BATCH_OPENAPI: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {
        k: v for k, v in SubmitBatchBody.model_json_schema(
            ref_template="#/components/schemas/{model}").items() if k != "$defs"}}}}}


async def read_batch_body(request: Request) -> SubmitBatchBody:
    """The body of ``POST /v1/jobs/batch``, read and validated in one pass by pydantic's
    JSON reader: a thousand submissions, each with its environment, cost half what
    ``json.loads`` then validation does. A bad body is refused as FastAPI refuses one
    (422, every error located: ``submissions[3].cwd``)."""
    raw = await request.body()
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not raw or not (media_type == "application/json" or media_type.endswith("+json")):
        raise RequestValidationError([{
            "type": "missing" if not raw else "model_attributes_type", "loc": ("body",),
            "msg": "Field required" if not raw else
            "Input should be a JSON object (Content-Type: application/json)"}])
    try:
        return SubmitBatchBody.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])}
             for e in exc.errors(include_url=False, include_input=False)]) from None


class DrainBody(_Body):
    reason: str = Field(min_length=1, description="why the node is drained (shown by sinfo)")
