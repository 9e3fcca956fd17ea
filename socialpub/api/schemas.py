"""The REST contract as pydantic models: request bodies, resources, envelopes, errors.

These models are the single source of truth for validation and for the OpenAPI document, so
each field carries its constraint, a description and an example. Request models forbid unknown
fields (a typo such as `scheduled_at` is a 422 naming it, not a silently ignored field).
Structural rules live here; rules that need stored state (accounts, platform limits, the post's
current status) live in the services.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
)

from socialpub.models.platforms import Platform

__all__ = [
    "MAX_ACCOUNT_ID",
    "MAX_BODY_CHARS",
    "Account",
    "AccountList",
    "AccountListResponse",
    "ErrorBody",
    "ErrorInfo",
    "FieldProblem",
    "Health",
    "HealthResponse",
    "ListMeta",
    "Media",
    "MediaInput",
    "Post",
    "PostCreate",
    "PostData",
    "PostList",
    "PostListQuery",
    "PostListResponse",
    "PostResponse",
    "PostStatus",
    "PostTarget",
    "PostUpdate",
    "PublishRequest",
    "Target",
    "TargetError",
    "TargetInput",
    "TargetList",
    "TargetListResponse",
    "TargetStatus",
    "format_time",
]

MAX_BODY_CHARS = 63206
"""The longest text any platform takes (Facebook); per-platform limits are checked per target."""
MAX_MEDIA = 10
MAX_ALT_CHARS = 1000
MAX_URL_CHARS = 2048
MAX_TARGETS = 50
MAX_ACCOUNT_ID = 2**63 - 1
_ID_LIMIT = 2**63
"""Ids are int64. The bound is declared as ``< 2**63`` rather than ``<= 2**63 - 1``: FastAPI's
OpenAPI model keeps numeric bounds as floats, and 2**63 - 1 is no float (it would be published
as 2**63, admitting an id the server refuses), while 2**63 is one exactly."""
_NOT_BLANK = r"[^\s\x1c-\x1f\x85]"
"""What `_not_blank` enforces, as a JSON Schema pattern: a character that is not whitespace as
Python counts it (ECMA-262's ``\\s`` leaves out U+001C to U+001F and U+0085)."""
_HTTPS_URL = r"^https://[^\s\x00-\x1f\x7f\x85/?#@:\[\]\\]+(:[0-9]{1,4})?([/?#][^\s\x00-\x1f\x7f\x85]*)?$"
"""A subset of what `_https` accepts, as a JSON Schema pattern: https, a host, no whitespace."""


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC, always with microseconds: the precision `expected_updated_at` compares."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


UtcTime = Annotated[
    datetime,
    PlainSerializer(format_time, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2025-06-01T09:30:00.000000Z"]}),
]
"""A timestamp in responses: `2025-06-01T09:30:00.123456Z`."""


def _unicode(value: str) -> str:
    """Refuse lone surrogates (valid JSON escapes, but not text any platform or store can take)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no unpaired surrogates)") from None
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only whitespace")
    return value


def _https(value: str) -> str:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise ValueError("must be a valid https:// URL") from None
    if parts.scheme != "https" or not parts.hostname or not value.startswith("https://"):
        raise ValueError("must be an https:// URL")
    if any(c.isspace() or ord(c) < 32 for c in value):
        raise ValueError("must not contain whitespace or control characters")
    return value


def _utc(value: datetime) -> datetime:
    """Normalise to UTC, refusing instants that do not exist there (year 1 with a + offset)."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


Text = Annotated[str, AfterValidator(_unicode)]
PostText = Annotated[
    str,
    Field(min_length=1, max_length=MAX_BODY_CHARS, json_schema_extra={"pattern": _NOT_BLANK}),
    AfterValidator(_unicode),
    AfterValidator(_not_blank),
]


def _whole_number(value: Any) -> Any:
    """JSON Schema's ``integer`` includes ``12.0``; JSON has one number type. Take a number with no
    fraction as the integer it is, and nothing else (no strings, no booleans): strict otherwise."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


AccountId = Annotated[
    int,
    Field(strict=True, ge=1, lt=_ID_LIMIT, description="The id of a connected account (an integer)."),
    BeforeValidator(_whole_number),
]
UtcInput = Annotated[AwareDatetime, AfterValidator(_utc)]
"""A time from a client: RFC 3339 with an offset (a naive time is ambiguous: 422), kept in UTC."""


class PostStatus(enum.StrEnum):
    """Where a post is in its life."""

    DRAFT = "draft"
    SCHEDULED = "scheduled"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    PARTIALLY_PUBLISHED = "partially_published"
    FAILED = "failed"


class TargetStatus(enum.StrEnum):
    """Where the delivery to one account is: `failed` will be retried, `dead` will not, `unknown`
    needs a person (the platform cannot tell whether it landed)."""

    PENDING = "pending"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    FAILED = "failed"
    DEAD = "dead"
    UNKNOWN = "unknown"


def _omittable(*fields: str, examples: list[Any]) -> Callable[[dict[str, Any]], None]:
    """A `json_schema_extra` that documents `fields` as omittable but never null.

    The fields are typed `X | None` so that "not sent" is `None` (with a before-validator
    refusing an explicit `null`); the schema must still say `X` alone, or generated clients
    and schemathesis would send `null` believing it valid.
    """

    def extra(schema: dict[str, Any]) -> None:
        for name in fields:
            prop = schema.get("properties", {}).get(name)
            if not prop or "anyOf" not in prop:
                continue
            options = [o for o in prop.pop("anyOf") if o.get("type") != "null"]
            if len(options) == 1:
                prop.update(options[0])
            else:
                prop["anyOf"] = options
            if prop.get("default", ...) is None:
                del prop["default"]
        schema["examples"] = examples

    return extra


# Requests.


class MediaInput(BaseModel):
    """An image to attach, fetched by the platforms from `url`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"url": "https://cdn.example.com/launch.png", "alt": "Our new app"}]},
    )

    url: Annotated[
        str,
        Field(min_length=9, max_length=MAX_URL_CHARS, json_schema_extra={"pattern": _HTTPS_URL}),
        AfterValidator(_https),
    ] = Field(description="An https:// URL of the image.", examples=["https://cdn.example.com/launch.png"])
    alt: Annotated[Text, Field(max_length=MAX_ALT_CHARS)] = Field(
        default="", description="Alternative text for screen readers.", examples=["Our new app"]
    )


class TargetInput(BaseModel):
    """One account to publish to, optionally with its own text."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=_omittable(
            "override_body", examples=[{"account_id": 12}, {"account_id": 13, "override_body": "Big news!"}]
        ),
    )

    account_id: AccountId
    override_body: PostText | None = Field(
        default=None,
        description="Text published on this account instead of the post's body; omit to use the body.",
    )

    @field_validator("override_body", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("omit override_body to publish the post's body; null is not accepted")
        return value


Targets = Annotated[
    list[TargetInput],
    Field(min_length=1, max_length=MAX_TARGETS, description="The accounts to publish to, one entry each."),
]
MediaList = Annotated[
    list[MediaInput], Field(max_length=MAX_MEDIA, description="Images, in order; at most 10.")
]


class PostListQuery(BaseModel):
    """The query of `GET /posts`. Unknown parameters are refused (422), like unknown body fields:
    a misspelt filter must not silently list everything."""

    model_config = ConfigDict(extra="forbid")

    status: PostStatus | None = Field(default=None, description="Only posts in this status.")
    search: str | None = Field(
        default=None, max_length=1000, description="Case-insensitive text in the body or any override body."
    )
    limit: int = Field(default=20, ge=1, le=100, description="Page size, 1 to 100.")
    offset: int = Field(default=0, ge=0, le=2**31, description="How many matching posts to skip.")


class PostCreate(BaseModel):
    """A new post. It starts as a draft: nothing is published until `POST /posts/{id}/publish`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "body": "We just launched our new app! #launch",
                    "media": [{"url": "https://cdn.example.com/launch.png", "alt": "Our new app"}],
                    "targets": [{"account_id": 12}, {"account_id": 13, "override_body": "Big news today!"}],
                }
            ]
        },
    )

    body: PostText = Field(description="The text of the post, published to every target without an override.")
    media: MediaList = Field(default_factory=list)
    targets: Targets


class PostUpdate(BaseModel):
    """Changes to a draft or scheduled post: any of `body`, `media`, `targets`.

    `expected_updated_at` makes the edit conditional: if the post changed since you read it,
    the answer is 409 `stale_object` and nothing is written. Omit it to edit unconditionally.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=_omittable(
            "body",
            "media",
            "targets",
            "expected_updated_at",
            examples=[
                {
                    "body": "We just launched our new app! #launch #mobile",
                    "expected_updated_at": "2025-06-01T09:30:00.123456Z",
                }
            ],
        ),
    )

    body: PostText | None = Field(default=None, description="The new text of the post.")
    media: MediaList | None = Field(default=None)
    targets: Targets | None = Field(default=None)
    expected_updated_at: UtcInput | None = Field(
        default=None,
        description="The post's updated_at as you last read it (RFC 3339 with an offset); compared exactly.",
        examples=["2025-06-01T09:30:00.123456Z"],
    )

    @field_validator("body", "media", "targets", "expected_updated_at", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("null is not accepted; omit the field to leave it unchanged")
        return value

    @property
    def changes_content(self) -> bool:
        return bool(self.model_fields_set & {"body", "media", "targets"})


class PublishRequest(BaseModel):
    """`{}` (or no body) publishes now; `scheduled_for` schedules for a future time.

    `expected_updated_at` makes publishing conditional on the post being what you read: if it
    changed since (another key edited the draft), the answer is 409 `stale_object` and nothing
    is published or scheduled.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=_omittable(
            "scheduled_for",
            "expected_updated_at",
            examples=[
                {},
                {"scheduled_for": "2030-06-01T09:30:00+02:00"},
                {"expected_updated_at": "2025-06-01T09:30:00.123456Z"},
            ],
        ),
    )

    scheduled_for: UtcInput | None = Field(
        default=None,
        description=(
            "When to publish (RFC 3339 with an offset; stored in UTC). Must be in the future "
            "(else 422 `scheduled_for_in_past`). Omit it to publish now."
        ),
        examples=["2030-06-01T09:30:00+02:00"],
    )
    expected_updated_at: UtcInput | None = Field(
        default=None,
        description=(
            "The post's updated_at as you last read it (RFC 3339 with an offset; compared exactly). "
            "Publish only if the post has not changed since: what you reviewed is what goes out."
        ),
        examples=["2025-06-01T09:30:00.123456Z"],
    )

    @field_validator("scheduled_for", "expected_updated_at", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("null is not accepted; omit the field (scheduled_for: to publish now)")
        return value


# Resources.


class Media(BaseModel):
    url: str = Field(examples=["https://cdn.example.com/launch.png"])
    alt: str = Field(examples=["Our new app"])


class PostTarget(BaseModel):
    account_id: int = Field(examples=[12])
    override_body: str | None = Field(description="null when the account publishes the post's body.")


class Post(BaseModel):
    """A post as integrators see it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "status": "draft",
                    "body": "We just launched our new app! #launch",
                    "media": [{"url": "https://cdn.example.com/launch.png", "alt": "Our new app"}],
                    "targets": [
                        {"account_id": 12, "override_body": None},
                        {"account_id": 13, "override_body": "Big news today!"},
                    ],
                    "scheduled_for": None,
                    "published_at": None,
                    "created_at": "2025-06-01T09:30:00.123456Z",
                    "updated_at": "2025-06-01T09:30:00.123456Z",
                }
            ]
        }
    )

    id: int = Field(examples=[42])
    status: PostStatus
    body: str
    media: list[Media]
    targets: list[PostTarget]
    scheduled_for: UtcTime | None = Field(description="When the post is to publish; null = not scheduled.")
    published_at: UtcTime | None = Field(description="When the post was published; null until then.")
    created_at: UtcTime
    updated_at: UtcTime = Field(description="Changes on every edit; send it back as expected_updated_at.")


class TargetError(BaseModel):
    code: str = Field(examples=["rate_limited"])
    message: str = Field(examples=["the platform asked us to slow down"])


class Target(BaseModel):
    """The delivery of a post to one account."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "account_id": 12,
                    "platform": "linkedin",
                    "status": "published",
                    "attempts": 1,
                    "external_post_id": "urn:li:share:7000000000000000000",
                    "last_error": None,
                    "next_attempt_at": None,
                    "published_at": "2025-06-01T09:30:02.000000Z",
                }
            ]
        }
    )

    account_id: int
    platform: Platform | None = Field(description="null only if the account was deleted meanwhile.")
    status: TargetStatus
    attempts: int = Field(ge=0)
    external_post_id: str | None
    last_error: TargetError | None
    next_attempt_at: UtcTime | None
    published_at: UtcTime | None


class Account(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"id": 12, "platform": "linkedin", "display_name": "Acme Co", "status": "active"}]
        }
    )

    id: int
    platform: Platform
    display_name: str
    status: str = Field(
        description="Always active here: only active accounts are listed.", examples=["active"]
    )


# Envelopes.


class PostData(BaseModel):
    post: Post


class PostResponse(BaseModel):
    data: PostData


class PostList(BaseModel):
    posts: list[Post]


class ListMeta(BaseModel):
    total: int = Field(ge=0, description="How many posts match the filters, on all pages.")
    limit: int = Field(ge=1, le=100)
    offset: int = Field(ge=0)


class PostListResponse(BaseModel):
    data: PostList
    meta: ListMeta


class TargetList(BaseModel):
    targets: list[Target]


class TargetListResponse(BaseModel):
    data: TargetList


class AccountList(BaseModel):
    accounts: list[Account]


class AccountListResponse(BaseModel):
    data: AccountList


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    checks: dict[str, bool] = Field(default_factory=dict)


class HealthResponse(BaseModel):
    data: Health


# Errors.


class FieldProblem(BaseModel):
    field: str | None = Field(default=None, description="The offending field, e.g. targets[0].account_id.")
    code: str | None = Field(default=None, description="A machine-readable reason, when there is one.")
    message: str


class ErrorInfo(BaseModel):
    code: str = Field(description="snake_case, stable: branch on it.", examples=["validation_error"])
    message: str = Field(description="What was wrong, for a human.")
    details: list[FieldProblem] | dict[str, Any] | None = Field(
        default=None, description="For 422: one entry per problem, naming the field."
    )


class ErrorBody(BaseModel):
    """Every error the API answers has this shape."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "validation_error",
                        "message": "the request is not valid; see details",
                        "details": [{"field": "targets[0].account_id", "message": "this field is required"}],
                    }
                }
            ]
        }
    )

    error: ErrorInfo
