"""``/posts``: create, list, read, edit, delete and publish posts, and follow their deliveries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response

from socialpub.api.deps import AuthenticatedRoute, IdempotencyDep, Manager, Publisher, RuntimeDep, Viewer
from socialpub.api.idempotency import Creation
from socialpub.api.responses import errors, replayable
from socialpub.api.schemas import (
    MAX_ACCOUNT_ID,
    ListMeta,
    PostCreate,
    PostData,
    PostList,
    PostListQuery,
    PostListResponse,
    PostResponse,
    PostUpdate,
    PublishRequest,
    TargetList,
    TargetListResponse,
)
from socialpub.api.services import posts as posts_service

__all__ = ["router"]

router = APIRouter(prefix="/posts", tags=["posts"], route_class=AuthenticatedRoute)

PostId = Annotated[
    int, Path(alias="id", ge=1, le=MAX_ACCOUNT_ID, description="The post's id.", examples=[42])
]


@router.post(
    "",
    status_code=201,
    response_model=PostResponse,
    summary="Create a post (as a draft)",
    responses={**replayable(201), **errors(400, 401, 403, 409, 410, 413, 415, 422, 503)},
)
async def create_post(
    payload: PostCreate, principal: Manager, runtime: RuntimeDep, idempotency: IdempotencyDep
) -> Response:
    """Create a draft post; nothing is published until `POST /posts/{id}/publish`.

    Every target must be an active account of the key's tenant and mode, listed once, and the
    text each account gets (its `override_body`, else `body`) must fit its platform: LinkedIn
    3,000 characters, Facebook 63,206, Instagram 2,200 and at most 30 hashtags (and Instagram
    needs an image). Send an `Idempotency-Key` to make retries safe. A retry whose first
    request created a post that has been deleted since answers 410 `post_deleted`: the post is
    not created again.
    """

    async def reserve() -> str:
        return await posts_service.reserve(runtime, principal, payload)

    async def create(name: str, creation: Creation) -> PostResponse:
        post = await posts_service.create_named(runtime, principal, payload, name, creation)
        return PostResponse(data=PostData(post=post))

    return await idempotency.respond_create(201, reserve, create)


@router.get(
    "",
    response_model=PostListResponse,
    summary="List posts, newest first",
    responses=errors(401, 403, 422, 503),
)
async def list_posts(
    principal: Viewer, runtime: RuntimeDep, query: Annotated[PostListQuery, Query()]
) -> PostListResponse:
    """The posts of the key's tenant and mode, newest first; `meta.total` counts all matches.
    Unknown query parameters are refused (422)."""
    posts, total = posts_service.list_posts(
        runtime, principal, status=query.status, search=query.search, limit=query.limit, offset=query.offset
    )
    return PostListResponse(
        data=PostList(posts=posts), meta=ListMeta(total=total, limit=query.limit, offset=query.offset)
    )


@router.get(
    "/{id}",
    response_model=PostResponse,
    summary="Get a post",
    responses=errors(401, 403, 404, 422, 503),
)
async def get_post(post_id: PostId, principal: Viewer, runtime: RuntimeDep) -> PostResponse:
    return PostResponse(data=PostData(post=posts_service.get(runtime, principal, post_id)))


@router.patch(
    "/{id}",
    response_model=PostResponse,
    summary="Edit a draft or scheduled post",
    responses=errors(400, 401, 403, 404, 409, 413, 415, 422, 503),
)
async def update_post(
    post_id: PostId, changes: PostUpdate, principal: Manager, runtime: RuntimeDep
) -> PostResponse:
    """Change any of `body`, `media`, `targets` (the whole list) of a draft or scheduled post.

    Send `expected_updated_at` (the `updated_at` you read) to make the edit conditional: if the
    post changed meanwhile the answer is 409 `stale_object` and nothing is written. Posts that
    are publishing or done answer 409 `post_not_editable`.

    Editing a draft needs `service.social.manage`. A scheduled post goes out with whatever it
    holds when it falls due, so editing it needs `service.social.publish` as well: without it
    the answer is 403 `insufficient_scope` with `details.required_scope`. The scope is checked
    against the same read of the post that the write is conditional on, so a post scheduled
    meanwhile is never changed by a key that may not publish.
    """
    return PostResponse(data=PostData(post=await posts_service.update(runtime, principal, post_id, changes)))


@router.delete(
    "/{id}",
    status_code=204,
    response_class=Response,
    summary="Delete a post",
    responses=errors(401, 403, 404, 422, 503),
)
async def delete_post(post_id: PostId, principal: Manager, runtime: RuntimeDep) -> Response:
    """Delete a post and its delivery targets. A scheduled post is cancelled.

    Nothing already live on a platform is retracted. A post that is publishing can be deleted:
    deliveries already made stay, the rest are not attempted.
    """
    await posts_service.delete(runtime, principal, post_id)
    return Response(status_code=204)


@router.post(
    "/{id}/publish",
    status_code=202,
    response_model=PostResponse,
    summary="Publish a post now, or schedule it",
    responses={**replayable(202), **errors(400, 401, 403, 404, 409, 413, 415, 422, 503)},
)
async def publish_post(
    post_id: PostId,
    principal: Publisher,
    runtime: RuntimeDep,
    idempotency: IdempotencyDep,
    request: Annotated[PublishRequest | None, Body()] = None,
) -> Response:
    """`{}` (or no body) publishes now (status `publishing`); `{"scheduled_for": …}` schedules
    (status `scheduled`). Publishing a scheduled post again reschedules it (or publishes it now).
    A post already publishing or done answers 409 `post_already_published`. Publishing happens
    in the background: follow it with `GET /posts/{id}` and `GET /posts/{id}/targets`.

    Send `expected_updated_at` (the `updated_at` of the post you reviewed) to publish only that
    version: a key that may only manage can still edit a draft, and without it an edit made
    just before would go out. If the post changed meanwhile the answer is 409 `stale_object`
    and nothing is published.
    """
    payload = request or PublishRequest()

    async def produce() -> PostResponse:
        return PostResponse(
            data=PostData(post=await posts_service.publish(runtime, principal, post_id, payload))
        )

    return await idempotency.respond(202, produce)


@router.get(
    "/{id}/targets",
    response_model=TargetListResponse,
    summary="Delivery status per account",
    responses=errors(401, 403, 404, 422, 503),
)
async def list_targets(post_id: PostId, principal: Viewer, runtime: RuntimeDep) -> TargetListResponse:
    """One row per account the post targets: its state, attempts, errors and platform post id."""
    return TargetListResponse(data=TargetList(targets=posts_service.targets(runtime, principal, post_id)))
