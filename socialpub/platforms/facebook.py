"""Facebook Pages through the Graph API, over httpx.

* Text (and a link): ``POST /{page-id}/feed`` with ``message`` (and ``link``: the first URL in
  the text, so the Page shows its preview) → ``{"id": "<page>_<post>"}``.
* One image: ``POST /{page-id}/photos`` with ``url``, ``caption`` and ``alt_text_custom`` →
  ``{"id": <photo>, "post_id": "<page>_<post>"}`` (Facebook fetches the image itself).
* Several images: each uploaded with ``published=false``, then ``POST /{page-id}/feed`` with
  ``attached_media[i]={"media_fbid": …}``.
* The Page token goes as the ``access_token`` parameter.
* Every answer's usage headers are remembered: calls are spaced out above 75 % and publishing is
  deferred (without spending an attempt) at 90 %, before Facebook throttles the Page or the app.

"Did it land?": the Page's posts since the attempt began less the clock-skew margin
(``/{page-id}/posts?since=…&limit=100``, following ``paging.next`` page by page) matched on the
exact message. A page limit reached first is :class:`OutcomeUnknown`, never "not found". A re-send
of identical text that Facebook refuses as a duplicate (506) is looked for the same way before it
is called a failure; after a create whose outcome is unknown, a 506 whose post is not listed (the
listing lags behind creates) is :class:`OutcomeUnknown`, and so is a lookup that fails for good
(Graph code 100): neither can tell "not published", so neither may dead-letter.

A create that may have been acted on (a timeout or dropped connection after sending, a 5xx or
Graph code 1/2, a 200 without an id) records ``unconfirmedSince`` and raises an *ambiguous*
:class:`TransientError`, so the operator waits out the claim's lease before it looks or re-sends.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx

from socialpub.platforms._graph import (
    Usage,
    answer_body,
    classify,
    find_listed,
    graph_error,
    send_graph,
)
from socialpub.platforms._http import (
    create_failed,
    looked_up,
    mark_unconfirmed,
    new_client,
    transport_error,
    unconfirmed_create,
    unconfirmed_since,
)
from socialpub.platforms.base import (
    Deferred,
    MediaItem,
    OutcomeUnknown,
    Published,
    PublishError,
    PublishRequest,
    ReconnectError,
    TransientError,
)
from socialpub.platforms.settings import PlatformSettings

__all__ = ["FacebookAdapter", "first_link"]

_URL = re.compile(r"https?://[^\s<>\"']+")


def first_link(text: str) -> str | None:
    match = _URL.search(text)
    return match.group(0).rstrip(".,;:!?)]}") if match else None


def _token(request: PublishRequest) -> str:
    if not request.access_token:
        raise ReconnectError("facebook: the account has no access token", code="facebook_no_token")
    return request.access_token


class FacebookAdapter:
    """Publishes to a Facebook Page as the Page."""

    platform = "facebook"

    def __init__(self, settings: PlatformSettings, http: httpx.AsyncClient | None = None) -> None:
        self._settings = settings
        self._base = settings.facebook_base_url.rstrip("/")
        self._http = http or new_client(
            timeout=settings.timeout_seconds, max_connections=settings.max_connections
        )
        self.usage = Usage(
            slowdown=settings.facebook_usage_slowdown_percent, stop=settings.facebook_usage_stop_percent
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        token: str,
        page: str,
        what: str,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        request: PublishRequest | None = None,
        url: str | None = None,
    ) -> dict[str, Any]:
        """One Graph call. With ``request``, it is a create: an unknown outcome is recorded first.
        ``url``: a full URL Graph gave us (``paging.next``) instead of ``path``."""
        wait = self.usage.deferral(page)
        if wait is not None:
            raise Deferred(
                f"facebook: usage of the app or Page is at the limit; holding off for {wait:.0f}s",
                code="facebook_usage_high",
                retry_after=wait,
            )
        await self.usage.pace(page)
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
            if request is not None:
                raise await create_failed(request, "facebook", what, exc) from exc
            raise transport_error("facebook", what, exc) from exc
        self.usage.observe(response.headers, page_id=page)
        body = answer_body(response)
        if body is not None:
            return body
        error = graph_error(response)
        failure = classify(
            "facebook", what, error, headers=response.headers, throttle_retry=self.usage.regain(page) or None
        )
        if (
            request is not None
            and (error.status >= 500 or error.code in (1, 2))
            and isinstance(failure, TransientError)
            and not isinstance(failure, Deferred)
        ):
            raise await unconfirmed_create(request, failure)  # a server error may follow a commit
        raise failure

    async def publish(self, request: PublishRequest) -> Published:
        token = _token(request)
        page = request.account_external_id
        earlier = unconfirmed_since(request)
        if earlier is not None:
            found = await self._look(token, page, request.text, since=earlier, earlier=earlier)
            if found is not None:
                return found
        try:
            post_id = await self._create(request, token, page)
        except PublishError as exc:
            if exc.code != "facebook_duplicate":
                raise
            since = min(earlier or request.started_at, request.started_at)
            found = await self._look(token, page, request.text, since=since, earlier=earlier)
            if found is not None:
                return found
            if earlier is not None:
                # Facebook refuses a message identical to the Page's latest post. After a create
                # whose outcome is unknown, that post may be ours and not listed yet (the listing
                # lags): neither "published" nor "dead" can be told.
                raise OutcomeUnknown(
                    f"{exc.message} (an earlier create of this target, whose outcome is unknown, is "
                    "not listed: it may be the duplicate)",
                    code="facebook_duplicate_unconfirmed",
                ) from exc
            raise
        if not post_id:
            raise await unconfirmed_create(
                request,
                TransientError("facebook: the post was accepted without an id", code="facebook_no_id"),
            )
        return self._published(post_id)

    async def _create(self, request: PublishRequest, token: str, page: str) -> str:
        media = request.media
        if not media:
            data: dict[str, Any] = {"message": request.text}
            link = first_link(request.text)
            if link:
                data["link"] = link
            body = await self._call(
                "POST",
                f"/{page}/feed",
                token=token,
                page=page,
                what="posting to the feed",
                data=data,
                request=request,
            )
            return str(body.get("id") or "")
        if len(media) == 1:
            data = {"url": media[0].url, "caption": request.text, "published": "true"}
            if media[0].alt:
                data["alt_text_custom"] = media[0].alt
            body = await self._call(
                "POST",
                f"/{page}/photos",
                token=token,
                page=page,
                what="posting a photo",
                data=data,
                request=request,
            )
            if body.get("post_id"):
                return str(body["post_id"])
            return f"{page}_{body['id']}" if body.get("id") else ""
        photo_ids = await asyncio.gather(*(self._unpublished_photo(token, page, item) for item in media))
        data = {"message": request.text}
        for i, photo_id in enumerate(photo_ids):
            data[f"attached_media[{i}]"] = json.dumps({"media_fbid": photo_id})
        body = await self._call(
            "POST",
            f"/{page}/feed",
            token=token,
            page=page,
            what="posting the photos",
            data=data,
            request=request,
        )
        return str(body.get("id") or "")

    async def _unpublished_photo(self, token: str, page: str, item: MediaItem) -> str:
        data = {"url": item.url, "published": "false"}
        if item.alt:
            data["alt_text_custom"] = item.alt
        body = await self._call(
            "POST", f"/{page}/photos", token=token, page=page, what="uploading a photo", data=data
        )
        photo_id = body.get("id")
        if not photo_id:
            raise TransientError(
                "facebook: the photo upload answered without an id", code="facebook_bad_answer"
            )
        return str(photo_id)

    def _published(self, post_id: str) -> Published:
        return Published(post_id, f"https://www.facebook.com/{post_id}")

    async def find_published(self, request: PublishRequest) -> Published | None:
        token = _token(request)
        since = min(unconfirmed_since(request) or request.started_at, request.started_at)
        found = await self._look(token, request.account_external_id, request.text, since=since, earlier=since)
        if found is None:
            # The re-send keeps the interrupted attempt's start, so it looks again from there (and
            # checks a 506 duplicate answer against it) instead of from its own start.
            await mark_unconfirmed(request)
        return found

    async def _look(
        self, token: str, page: str, text: str, *, since: float, earlier: float | None
    ) -> Published | None:
        """:meth:`_find`, where a lookup that fails for good after an unknown outcome (``earlier``)
        is :class:`OutcomeUnknown` rather than a dead-letter (see ``looked_up``)."""
        return await looked_up(self._find(token, page, text, since=since), earlier)

    async def _find(self, token: str, page: str, text: str, *, since: float) -> Published | None:
        """Our post among the Page's posts since ``since`` less the clock-skew margin, newest first,
        following ``paging.next``; :class:`LookupTooDeep` if the page limit comes first."""
        post = await find_listed(
            lambda params, url: self._call(
                "GET",
                f"/{page}/posts",
                token=token,
                page=page,
                what="listing the Page's posts",
                params=params,
                url=url,
            ),
            platform="facebook",
            base=self._base,
            fields="id,message,created_time",
            time_field="created_time",
            since=since,
            earliest=since - self._settings.lookup_clock_skew_seconds,
            max_pages=self._settings.lookup_max_pages,
            matches=lambda post: (post.get("message") or "") == text,
            elsewhere="the Page's posts continue on another host",
        )
        return None if post is None else self._published(str(post["id"]))
