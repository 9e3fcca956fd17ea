"""Instagram content publishing (professional accounts) through the Graph API, over httpx.

One post is three steps, and the adapter makes each recoverable:

1. **Container**: ``POST /{ig-user-id}/media`` with ``image_url``, ``caption`` and ``alt_text``
   (a carousel: one ``is_carousel_item`` container per image, then a ``CAROUSEL`` parent with
   ``children``, 2 to 10). Its id is saved durably (``status.platformState.containerId``) *before*
   anything is published, so a retry or a restarted operator reuses it.
2. **Status**: ``GET /{container-id}?fields=status_code,status`` polled until ``FINISHED``
   (bounded per attempt; a container still ``IN_PROGRESS`` is picked up again by the next one).
   ``ERROR`` and ``EXPIRED`` (unpublished for 24 h) containers are replaced.
3. **Publish**: first ``GET /{ig-user-id}/content_publishing_limit``; with the 24-hour quota used
   up the attempt is *deferred* (no attempt counted). Then ``POST /{ig-user-id}/media_publish``
   with ``creation_id`` → ``{"id": <media id>}``, and the permalink is read.

"Did it land?": the saved container's ``status_code`` first. ``PUBLISHED`` means yes — the media
id is found among the account's media since the container was made (less the clock-skew margin),
by caption, following ``paging.next`` 100 at a time (the container does not name its media; a
page limit reached first is :class:`OutcomeUnknown`); ``FINISHED`` means no, and publishing it is
safe. ``PUBLISHED`` is final whenever it is seen — on the first read, or while waiting for
``FINISHED`` (an earlier media_publish was still being processed): a live post is never failed.
Until the media list shows it, publishing is :class:`Deferred` (no attempt spent) for at most
``instagram_unlisted_wait_seconds``, then :class:`OutcomeUnknown` (live, id unknown: a person
settles it). A lookup refused for good after a container was saved is :class:`OutcomeUnknown` too.

A ``media_publish`` that may have been acted on (a timeout or dropped connection after sending, a
5xx or Graph code 1/2, a 200 without an id) raises an *ambiguous* :class:`TransientError`: the
operator waits out the claim's lease before it reads the container again, so a publish Instagram
is still processing has landed by then.

Captions are checked before anything is sent, by the same rules the api applies at create time
(:func:`socialpub.models.platforms.length_problems`): 2200 characters, 30 hashtags (glued ones
like ``#a#b`` count one each), 20 @mentions.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx

from socialpub.models.platforms import Platform, length_problems
from socialpub.platforms._graph import (
    IG_NEW_CONTAINER_SUBCODES,
    IG_PERMANENT_SUBCODES,
    answer_body,
    classify,
    find_listed,
    graph_error,
    send_graph,
)
from socialpub.platforms._http import (
    ambiguous,
    format_time,
    looked_up,
    new_client,
    parse_time,
    transport_error,
)
from socialpub.platforms.base import (
    Deferred,
    MediaItem,
    OutcomeUnknown,
    PermanentError,
    Published,
    PublishError,
    PublishRequest,
    ReconnectError,
    TransientError,
)
from socialpub.platforms.settings import PlatformSettings

__all__ = ["CONTAINER_CREATED_AT", "CONTAINER_ID", "UNLISTED_SINCE", "InstagramAdapter"]

CONTAINER_ID = "containerId"
CONTAINER_CREATED_AT = "containerCreatedAt"
UNLISTED_SINCE = "publishedUnlistedSince"
"""``platformState`` key: when the saved container was first seen ``PUBLISHED`` without its media
among the account's media (RFC 3339). Bounds how long publishing waits for the listing."""
MAX_CAPTION = 2200
MIN_CAROUSEL, MAX_CAROUSEL = 2, 10
_SUBCODE = re.compile(r"\b(2207\d{3})\b")


class _ContainerGone(TransientError):
    """The container expired or broke: the next attempt makes a new one."""


def _token(request: PublishRequest) -> str:
    if not request.access_token:
        raise ReconnectError("instagram: the account has no access token", code="instagram_no_token")
    return request.access_token


class InstagramAdapter:
    """Publishes images and carousels to an Instagram professional account."""

    platform = "instagram"

    def __init__(self, settings: PlatformSettings, http: httpx.AsyncClient | None = None) -> None:
        self._settings = settings
        self._base = settings.instagram_base_url.rstrip("/")
        self._http = http or new_client(
            timeout=settings.timeout_seconds, max_connections=settings.max_connections
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        token: str,
        what: str,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        url: str | None = None,
        create: bool = False,
    ) -> dict[str, Any]:
        """One Graph call; ``url``: a full URL Graph gave us (``paging.next``) instead of ``path``.
        ``create``: the call publishes (``media_publish``), so a failure after it may have reached
        Instagram is ambiguous (:attr:`TransientError.ambiguous`)."""
        try:
            response = await send_graph(
                self._http,
                method,
                url or f"{self._base}{path}",
                token=token,
                deadline=self._settings.request_deadline_seconds,
                params=params,
                data=data,
            )
        except httpx.HTTPError as exc:
            raise transport_error("instagram", what, exc, acted_on=create and ambiguous(exc)) from exc
        body = answer_body(response)
        if body is not None:
            return body
        error = graph_error(response)
        failure = classify(
            "instagram",
            what,
            error,
            headers=response.headers,
            quota_retry=self._settings.instagram_quota_retry_seconds,
        )
        if error.subcode in IG_NEW_CONTAINER_SUBCODES:
            raise _ContainerGone(failure.message, code=failure.code)
        if (
            create
            and (error.status >= 500 or error.code in (1, 2))
            and isinstance(failure, TransientError)
            and not isinstance(failure, Deferred)
        ):
            failure.ambiguous = True  # a server error may follow a commit
        raise failure

    # Publishing.

    async def publish(self, request: PublishRequest) -> Published:
        token = _token(request)
        user = request.account_external_id
        media = request.media
        if not media:
            raise PermanentError(
                "instagram: a post needs at least one image", code="instagram_media_required"
            )
        if len(media) > MAX_CAROUSEL:
            raise PermanentError(
                f"instagram: a carousel takes at most {MAX_CAROUSEL} images, not {len(media)}",
                code="instagram_too_many_images",
            )
        problems = length_problems(Platform.INSTAGRAM, request.text)
        if problems:
            too_long = len(request.text) > MAX_CAPTION
            raise PermanentError(
                f"instagram: the caption cannot be published: {'; '.join(problems)}",
                code="instagram_caption_too_long" if too_long else "instagram_caption_rejected",
            )
        container = str(request.platform_state.get(CONTAINER_ID) or "") or None
        if container is not None:
            status = await self._saved_status(request, container, token)
            if status == "PUBLISHED":
                return await self._landed(request, container, token)
            if status not in ("FINISHED", "IN_PROGRESS"):
                container = None  # ERROR or EXPIRED: start again with a new one
        if container is None:
            container = await self._create_container(request, token, user)
            await request.checkpoint(
                {CONTAINER_ID: container, CONTAINER_CREATED_AT: format_time(time.time())}
            )
        if await self._wait_finished(request, container, token, saved=True) == "PUBLISHED":
            # An earlier media_publish of this container was still being processed when the status
            # was first read: it has landed since.
            return await self._landed(request, container, token)
        await self._check_quota(token, user)
        try:
            body = await self._call(
                "POST",
                f"/{user}/media_publish",
                token=token,
                what="publishing the container",
                params={"creation_id": container},
                create=True,
            )
        except _ContainerGone:
            await request.checkpoint({CONTAINER_ID: None, CONTAINER_CREATED_AT: None})
            raise
        media_id = str(body.get("id") or "")
        if not media_id:
            raise TransientError(
                "instagram: media_publish answered without an id",
                code="instagram_no_id",
                ambiguous=True,
            )
        return Published(media_id, await self._permalink(token, media_id))

    async def _saved_status(self, request: PublishRequest, container: str, token: str) -> str:
        """The status of the container saved by an earlier attempt. That attempt may have called
        media_publish, so a read refused for good (Graph code 100) cannot tell "not published":
        :class:`OutcomeUnknown`, never a dead-letter."""
        status, _ = await looked_up(self._status(container, token), _container_since(request))
        return status

    async def _landed(self, request: PublishRequest, container: str, token: str) -> Published:
        """The saved container is ``PUBLISHED``: the post is live. Its media id is looked up; until
        the account's media list shows it (it lags behind publishing, and Instagram may change the
        caption we match on; or the list cannot be read just now), publishing is :class:`Deferred`
        — no attempt is spent, as none could fail it — for at most
        ``instagram_unlisted_wait_seconds`` from the first time it was seen so. Past that the post
        is live with an id nobody can learn (the container does not name its media):
        :class:`OutcomeUnknown`, for a person to settle. Never dead, never re-sent."""
        lookup_failed = ""
        try:
            found = await looked_up(
                self._find_media(token, request.account_external_id, request), _container_since(request)
            )
        except Deferred:
            raise
        except TransientError as exc:
            # The post is live: a lookup that failed for now must not spend an attempt either.
            found, lookup_failed = None, f" ({exc.message})"
        if found is not None:
            return found
        now = time.time()
        first = parse_time(request.platform_state.get(UNLISTED_SINCE))
        if first is None:
            first = now
            await request.checkpoint({UNLISTED_SINCE: format_time(now)})
        left = first + self._settings.instagram_unlisted_wait_seconds - now
        if left > 0:
            raise Deferred(
                f"instagram: container {container} is published but its media is not listed yet"
                f"{lookup_failed}; looking again (for {left:.0f}s more)",
                code="instagram_published_unlisted",
                retry_after=max(0.0, min(self._settings.instagram_unlisted_retry_seconds, left)),
            )
        raise OutcomeUnknown(
            f"instagram: container {container} is published, but no media with its caption has been "
            f"listed since {format_time(first)}: the post is live and its id unknown; find it on the "
            "account and settle the target by hand",
            code="instagram_published_unlisted",
        )

    async def _create_container(self, request: PublishRequest, token: str, user: str) -> str:
        media = request.media
        if len(media) == 1:
            data = self._image(media[0])
            data["caption"] = request.text
            body = await self._call(
                "POST", f"/{user}/media", token=token, what="creating the container", data=data
            )
            return self._id(body, "container")
        children = await asyncio.gather(*(self._child(token, user, item) for item in media))
        await asyncio.gather(*(self._wait_finished(request, child, token, saved=False) for child in children))
        data = {"media_type": "CAROUSEL", "children": ",".join(children), "caption": request.text}
        body = await self._call(
            "POST", f"/{user}/media", token=token, what="creating the carousel container", data=data
        )
        return self._id(body, "carousel container")

    async def _child(self, token: str, user: str, item: MediaItem) -> str:
        data = {**self._image(item), "is_carousel_item": "true"}
        body = await self._call(
            "POST", f"/{user}/media", token=token, what="creating a carousel item", data=data
        )
        return self._id(body, "carousel item")

    @staticmethod
    def _image(item: MediaItem) -> dict[str, Any]:
        data: dict[str, Any] = {"image_url": item.url}
        if item.alt:
            data["alt_text"] = item.alt
        return data

    @staticmethod
    def _id(body: dict[str, Any], what: str) -> str:
        value = body.get("id")
        if not value:
            raise TransientError(
                f"instagram: creating the {what} answered without an id", code="instagram_no_id"
            )
        return str(value)

    async def _status(self, container: str, token: str) -> tuple[str, str]:
        body = await self._call(
            "GET",
            f"/{container}",
            token=token,
            what="reading the container status",
            params={"fields": "status_code,status"},
        )
        return str(body.get("status_code") or ""), str(body.get("status") or "")

    async def _wait_finished(
        self, request: PublishRequest, container: str, token: str, *, saved: bool
    ) -> str:
        """Poll until FINISHED; bounded per attempt (a later attempt resumes with the same container).

        A ``saved`` container (one an earlier attempt may have called media_publish on) that turns
        ``PUBLISHED`` is returned as such: that publish has landed. A carousel item never is."""
        deadline = time.monotonic() + self._settings.instagram_poll_timeout_seconds
        while True:
            status, detail = await self._status(container, token)
            if status == "FINISHED" or (status == "PUBLISHED" and saved):
                return status
            if status == "PUBLISHED":
                raise PermanentError(
                    f"instagram: container {container} is already published",
                    code="instagram_container_published",
                )
            if status in ("ERROR", "EXPIRED"):
                if saved:
                    await request.checkpoint({CONTAINER_ID: None, CONTAINER_CREATED_AT: None})
                match = _SUBCODE.search(detail)
                if status == "ERROR" and match and int(match.group(1)) in IG_PERMANENT_SUBCODES:
                    raise PermanentError(
                        f"instagram: the container failed: {detail}",
                        code=f"instagram_media_rejected_{match.group(1)}",
                    )
                raise TransientError(
                    f"instagram: container {container} is {status}: {detail}".rstrip(": "),
                    code=f"instagram_container_{status.lower()}",
                )
            if time.monotonic() >= deadline:
                raise TransientError(
                    f"instagram: container {container} is still {status or 'unknown'}; will look again",
                    code="instagram_container_in_progress",
                    retry_after=self._settings.instagram_poll_interval_seconds,
                )
            await asyncio.sleep(self._settings.instagram_poll_interval_seconds)

    async def _check_quota(self, token: str, user: str) -> None:
        try:
            body = await self._call(
                "GET",
                f"/{user}/content_publishing_limit",
                token=token,
                what="reading the publishing quota",
                params={"fields": "quota_usage,config"},
            )
        except (ReconnectError, Deferred):
            raise
        except PublishError:
            return  # the limit is enforced by media_publish itself; a failed look is no reason to stop
        for entry in body.get("data") or []:
            if not isinstance(entry, dict):
                continue
            usage = entry.get("quota_usage")
            total = (entry.get("config") or {}).get("quota_total")
            if isinstance(usage, int) and isinstance(total, int) and usage >= total:
                raise Deferred(
                    f"instagram: {usage} of {total} posts in the last 24 hours; the quota is used up",
                    code="instagram_quota_exhausted",
                    retry_after=self._settings.instagram_quota_retry_seconds,
                )

    async def _permalink(self, token: str, media_id: str) -> str:
        try:
            body = await self._call(
                "GET",
                f"/{media_id}",
                token=token,
                what="reading the permalink",
                params={"fields": "permalink"},
            )
        except PublishError:
            return "https://www.instagram.com/"
        return str(body.get("permalink") or "https://www.instagram.com/")

    # Did it land?

    async def find_published(self, request: PublishRequest) -> Published | None:
        token = _token(request)
        container = request.platform_state.get(CONTAINER_ID)
        if not container:
            return None  # the container id is saved before media_publish: none means nothing was published
        if await self._saved_status(request, str(container), token) != "PUBLISHED":
            return None
        return await self._landed(request, str(container), token)

    async def _find_media(self, token: str, user: str, request: PublishRequest) -> Published | None:
        """Our media among the account's media since the container was made (less the clock-skew
        margin), newest first, following ``paging.next``; :class:`LookupTooDeep` if the page limit
        comes first."""
        since = _container_since(request)
        item = await find_listed(
            lambda params, url: self._call(
                "GET", f"/{user}/media", token=token, what="listing recent media", params=params, url=url
            ),
            platform="instagram",
            base=self._base,
            fields="id,caption,timestamp,permalink",
            time_field="timestamp",
            since=since,
            earliest=since - self._settings.lookup_clock_skew_seconds,
            max_pages=self._settings.lookup_max_pages,
            matches=lambda item: (item.get("caption") or "") == request.text,
            elsewhere="the media list continues on another host",
        )
        if item is None:
            return None
        return Published(str(item["id"]), str(item.get("permalink") or "https://www.instagram.com/"))


def _container_since(request: PublishRequest) -> float:
    """When the saved container was made (the earliest its media can have been published)."""
    return parse_time(request.platform_state.get(CONTAINER_CREATED_AT)) or request.started_at
