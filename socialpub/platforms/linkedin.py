"""LinkedIn: the versioned Posts API (``POST /rest/posts``) and Images API, over httpx.

* Every ``/rest`` call carries ``Authorization: Bearer``, ``LinkedIn-Version`` (a setting) and
  ``X-Restli-Protocol-Version: 2.0.0``.
* Text is sent as ``commentary`` in LinkedIn's *little text* format. Its reserved characters
  (``\\ | { } @ [ ] ( ) < > # * _ ~``) are backslash-escaped, because LinkedIn answers 201 and
  silently drops the text from the first unescaped one onward; ``#word`` becomes the documented
  hashtag template ``{hashtag|#|word}`` so hashtags stay hashtags.
* Images: fetched (see :mod:`socialpub.platforms.media`), ``initializeUpload`` → ``PUT`` the bytes
  to the returned ``uploadUrl`` → the ``urn:li:image:…`` goes into ``content.media`` (one, with
  ``altText``) or ``content.multiImage`` (several).
* The post's URN comes from the ``x-restli-id`` header of the 201.

"Did it land?": LinkedIn has no idempotency key. An organization's posts are listed newest
first (``q=author``, ``sortBy=CREATED``, 100 a page, ``start`` advanced page by page) back to the
attempt's start less the clock-skew margin, and matched on the exact commentary we sent; a page
limit reached first is :class:`OutcomeUnknown`, never "not found". A re-send that LinkedIn refuses
as ``DUPLICATE_POST`` after an unknown outcome is ours if the post its message names is, read back
(``GET /rest/posts/{urn}``): same author, same commentary, created in the window; a refusal that
names no post is :class:`OutcomeUnknown`, and so is a lookup that fails for good (426, 400, 404)
after an unknown outcome: neither can tell "not published", so neither may dead-letter.

A create that may have been acted on (a timeout or dropped connection after sending, a 5xx, a 201
without a URN) records ``unconfirmedSince`` and raises an *ambiguous* :class:`TransientError`: the
operator waits out the claim's lease, so LinkedIn has committed it (or never will) before anyone
looks. A refused connection sent nothing and is not ambiguous.

A member's posts cannot be listed or read (``r_member_social`` is closed), and re-sending to learn
from ``DUPLICATE_POST`` would post twice wherever LinkedIn accepts the duplicate. So a member
publish saves ``createSentAttempt`` before its create (removed again when LinkedIn refuses it, or
when the connection was never made, so nothing was sent): an interrupted attempt that never sent
one is safely "not found"; one that did, or an earlier create with an unknown outcome, is
:class:`OutcomeUnknown` (a person decides), never re-sent.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import quote

import httpx

from socialpub.platforms._http import (
    LookupTooDeep,
    create_failed,
    looked_up,
    mark_unconfirmed,
    new_client,
    retry_after_seconds,
    send,
    transport_error,
    unconfirmed_create,
    unconfirmed_since,
)
from socialpub.platforms.base import (
    MediaItem,
    OutcomeUnknown,
    PermanentError,
    Published,
    PublishError,
    PublishRequest,
    ReconnectError,
    TransientError,
)
from socialpub.platforms.media import MediaFetcher
from socialpub.platforms.settings import PlatformSettings

__all__ = [
    "CREATE_SENT",
    "LinkedInAdapter",
    "author_urn",
    "escape_little_text",
    "little_text_to_plain",
]

MAX_COMMENTARY = 3000
MAX_ALT_TEXT = 4086
_RESERVED = frozenset("\\|{}@[]()<>#*_~")
_HASHTAG = re.compile(r"(?:(?<=[\s(\[{\"'])|^)#(\w+)", re.UNICODE)
_TEMPLATE = re.compile(r"\{hashtag\|\\?[#\uff03]\|((?:\\.|[^}])*)\}")
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)
_DUPLICATE_URN = re.compile(r"urn:li:(?:share|ugcPost):\d+")
PAGE_SIZE = 100
"""Posts per page of the ``q=author`` finder (its largest ``count``)."""
CREATE_SENT = "createSentAttempt"
"""``platformState`` key (member authors): set to the attempt's number just before its create is
sent, removed once LinkedIn answered it with a refusal. Present means a create went out whose
answer nobody has acted on."""


def _escape_plain(text: str) -> str:
    return "".join("\\" + c if c in _RESERVED else c for c in text)


def escape_little_text(text: str) -> str:
    """``text`` as little text that LinkedIn shows exactly as written (hashtags linked)."""
    out: list[str] = []
    pos = 0
    for match in _HASHTAG.finditer(text):
        out.append(_escape_plain(text[pos : match.start()]))
        out.append("{hashtag|#|" + _escape_plain(match.group(1)) + "}")
        pos = match.end()
    out.append(_escape_plain(text[pos:]))
    return "".join(out)


def little_text_to_plain(little: str) -> str:
    """What a little-text commentary shows (templates expanded, escapes removed)."""
    expanded = _TEMPLATE.sub(lambda m: "#" + m.group(1), little)
    return _ESCAPED.sub(r"\1", expanded)


def author_urn(external_id: str) -> str:
    """The author URN of an account: its external id as a URN, or an organization id."""
    external_id = external_id.strip()
    if external_id.startswith("urn:li:"):
        return external_id
    return f"urn:li:organization:{external_id}"


def _token(request: PublishRequest) -> str:
    if not request.access_token:
        raise ReconnectError("linkedin: the account has no access token", code="linkedin_no_token")
    return request.access_token


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def map_error(response: httpx.Response, what: str) -> PublishError:
    """A LinkedIn error answer as transient / permanent / reconnect."""
    body = _json(response)
    status = response.status_code
    service_code = body.get("serviceErrorCode")
    code = str(body.get("code") or "")
    message = f"linkedin: {what} answered {status}: {body.get('message') or response.text[:300]}"
    if status == 401:
        if service_code == 65601 or code == "REVOKED_ACCESS_TOKEN":
            return ReconnectError(message, code="linkedin_token_revoked", revoked=True)
        if service_code == 65602 or code == "EXPIRED_ACCESS_TOKEN":
            return ReconnectError(message, code="linkedin_token_expired")
        return ReconnectError(message, code="linkedin_token_invalid")
    if status == 403:
        return ReconnectError(message, code="linkedin_access_denied", revoked=True)
    if status == 426:
        return PermanentError(message, code="linkedin_version_not_active")
    if status == 429:
        return TransientError(
            message, code="linkedin_throttled", retry_after=retry_after_seconds(response.headers)
        )
    if status >= 500 or status == 408:
        return TransientError(
            message, code="linkedin_server_error", retry_after=retry_after_seconds(response.headers)
        )
    details = (body.get("errorDetails") or {}).get("inputErrors") or []
    if any((d or {}).get("code") == "DUPLICATE_POST" for d in details):
        return PermanentError(message, code="linkedin_duplicate_post")
    return PermanentError(message, code="linkedin_invalid_request")


class LinkedInAdapter:
    """Publishes as an organization (or member) through the Posts API."""

    platform = "linkedin"

    def __init__(
        self, settings: PlatformSettings, media: MediaFetcher, http: httpx.AsyncClient | None = None
    ) -> None:
        self._settings = settings
        self._media = media
        self._base = settings.linkedin_base_url.rstrip("/")
        self._http = http or new_client(
            timeout=settings.timeout_seconds, max_connections=settings.max_connections
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def _headers(self, token: str, *, json_body: bool = True) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {token}",
            "LinkedIn-Version": self._settings.linkedin_version,
            "X-Restli-Protocol-Version": "2.0.0",
        }
        if json_body:
            headers["Content-Type"] = "application/json"
        return headers

    # Publishing.

    async def publish(self, request: PublishRequest) -> Published:
        token = _token(request)
        author = author_urn(request.account_external_id)
        if len(request.text) > MAX_COMMENTARY:
            raise PermanentError(
                f"linkedin: the text has {len(request.text)} characters; at most {MAX_COMMENTARY}",
                code="linkedin_text_too_long",
            )
        commentary = escape_little_text(request.text)
        earlier = unconfirmed_since(request)
        if earlier is not None:
            if _is_member(author):
                raise _member_unknown(author)
            found = await self._look(token, author, commentary, since=earlier, earlier=earlier)
            if found is not None:
                return found
        body: dict[str, Any] = {
            "author": author,
            "commentary": commentary,
            "visibility": "PUBLIC",
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        if request.media:
            body["content"] = await self._content(token, author, request.media)
        if _is_member(author):
            await request.checkpoint({CREATE_SENT: request.attempt})
        try:
            response = await self._request(
                "POST", f"{self._base}/rest/posts", json=body, headers=self._headers(token)
            )
        except httpx.HTTPError as exc:
            failed = await create_failed(request, "linkedin", "creating the post", exc)
            if not failed.ambiguous and _is_member(author):
                await request.checkpoint({CREATE_SENT: None})  # it never left: nothing was sent
            raise failed from exc
        if response.status_code in (200, 201):
            urn = (
                response.headers.get("x-restli-id")
                or response.headers.get("x-linkedin-id")
                or str(_json(response).get("id") or "")
            )
            if not urn:
                raise await unconfirmed_create(
                    request,
                    TransientError("linkedin: the post was accepted without an id", code="linkedin_no_id"),
                )
            return self._published(urn)
        error = map_error(response, "creating the post")
        if response.status_code >= 500 and isinstance(error, TransientError):
            raise await unconfirmed_create(request, error)  # a 5xx may follow a commit
        if _is_member(author):
            await request.checkpoint({CREATE_SENT: None})  # refused: certainly not published
        if error.code == "linkedin_duplicate_post":
            return await self._duplicate(request, token, author, commentary, earlier, error)
        raise error

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return await send(self._http, method, url, deadline=self._settings.request_deadline_seconds, **kwargs)

    async def _duplicate(
        self,
        request: PublishRequest,
        token: str,
        author: str,
        commentary: str,
        earlier: float | None,
        error: PublishError,
    ) -> Published:
        """LinkedIn refused identical content: ours from an attempt whose outcome was unknown, or a
        real duplicate (identical text already posted: permanent). After an unknown outcome, a
        refusal that can neither be confirmed as ours nor ruled out (it names no post; the listing
        lags behind the create) is :class:`OutcomeUnknown`: dead-lettering could drop a live post."""
        if _is_member(author):
            raise PermanentError(
                f"{error.message} (LinkedIn refuses a post identical to a recent one)",
                code="linkedin_duplicate_post",
            )
        since = min(earlier or request.started_at, request.started_at)
        found = await self._look(token, author, commentary, since=since, earlier=earlier)
        if found is not None:
            return found
        match = _DUPLICATE_URN.search(error.message)
        if earlier is not None and match:
            confirmed = await self._confirm(token, author, commentary, match.group(0), since=earlier)
            if confirmed is not None:
                return confirmed
        elif earlier is not None:
            raise OutcomeUnknown(
                f"{error.message} (the refusal names no post, and an earlier create of this target, "
                "whose outcome is unknown, is not listed: it may be the duplicate)",
                code="linkedin_duplicate_unconfirmed",
            )
        raise PermanentError(
            f"{error.message} (LinkedIn refuses a post identical to a recent one)",
            code="linkedin_duplicate_post",
        )

    async def _confirm(
        self, token: str, author: str, commentary: str, urn: str, *, since: float
    ) -> Published | None:
        """Is the post a DUPLICATE_POST answer names our earlier create? Read it back: same author,
        same commentary, created in the attempt's window. The listing may lag behind a create; the
        post itself does not."""
        headers = self._headers(token, json_body=False)
        try:
            response = await self._request(
                "GET", f"{self._base}/rest/posts/{quote(urn, safe='')}", headers=headers
            )
        except httpx.HTTPError as exc:
            raise transport_error("linkedin", "reading the duplicated post", exc) from exc
        if response.status_code in (404, 410):
            return None  # a "ghost" URN of a deleted post: nothing of ours is live
        if response.status_code != 200:
            error = map_error(response, "reading the duplicated post")
            if isinstance(error, TransientError):
                raise error
            raise OutcomeUnknown(
                f"linkedin: {urn} may be our earlier post but cannot be read back: {error.message}",
                code="linkedin_duplicate_unconfirmed",
            )
        element = _json(response)
        earliest_ms = (since - self._settings.lookup_clock_skew_seconds) * 1000
        if element.get("author") == author and self._matches(element, commentary, earliest_ms):
            return self._published(urn)
        return None

    @staticmethod
    def _matches(element: dict[str, Any], commentary: str, earliest_ms: float) -> bool:
        created = element.get("createdAt") or element.get("publishedAt") or 0
        if not isinstance(created, int | float) or created < earliest_ms:
            return False
        theirs = str(element.get("commentary") or "")
        return theirs == commentary or little_text_to_plain(theirs) == little_text_to_plain(commentary)

    def _published(self, urn: str) -> Published:
        return Published(urn, f"https://www.linkedin.com/feed/update/{urn}/")

    async def _content(self, token: str, author: str, media: tuple[MediaItem, ...]) -> dict[str, Any]:
        urns = await asyncio.gather(*(self._upload(token, author, item) for item in media))
        images = [
            {"id": urn, "altText": item.alt[:MAX_ALT_TEXT]} if item.alt else {"id": urn}
            for urn, item in zip(urns, media, strict=True)
        ]
        if len(images) == 1:
            return {"media": images[0]}
        return {"multiImage": {"images": images}}

    async def _upload(self, token: str, author: str, item: MediaItem) -> str:
        fetched = await self._media.fetch(item.url)
        try:
            response = await self._request(
                "POST",
                f"{self._base}/rest/images?action=initializeUpload",
                json={"initializeUploadRequest": {"owner": author}},
                headers=self._headers(token),
            )
        except httpx.HTTPError as exc:
            raise transport_error("linkedin", "initializing an image upload", exc) from exc
        if response.status_code != 200:
            raise map_error(response, "initializing an image upload")
        value = _json(response).get("value") or {}
        upload_url, image = value.get("uploadUrl"), value.get("image")
        if not isinstance(upload_url, str) or not isinstance(image, str):
            raise TransientError(
                "linkedin: initializeUpload answered without uploadUrl/image", code="linkedin_bad_answer"
            )
        try:
            put = await self._request(
                "PUT",
                upload_url,
                content=fetched.content,
                headers={"Authorization": f"Bearer {token}", "Content-Type": fetched.content_type},
            )
        except httpx.HTTPError as exc:
            raise transport_error("linkedin", "uploading an image", exc) from exc
        if put.status_code >= 300:
            raise map_error(put, "uploading an image")
        return image

    # Did it land?

    async def find_published(self, request: PublishRequest) -> Published | None:
        token = _token(request)
        author = author_urn(request.account_external_id)
        earlier = unconfirmed_since(request)
        if _is_member(author):
            if earlier is not None or CREATE_SENT in request.platform_state:
                raise _member_unknown(author)
            return None  # the interrupted attempt never sent its create
        since = min(earlier or request.started_at, request.started_at)
        found = await self._look(token, author, escape_little_text(request.text), since=since, earlier=since)
        if found is None:
            # Not listed, but the interrupted create may have landed where the listing cannot
            # show it yet: the re-send keeps this attempt's start, to look again and to recognise
            # our own post in a DUPLICATE_POST answer.
            await mark_unconfirmed(request)
        return found

    async def _look(
        self, token: str, author: str, commentary: str, *, since: float, earlier: float | None
    ) -> Published | None:
        """:meth:`_find`, where a lookup that fails for good after an unknown outcome (``earlier``)
        is :class:`OutcomeUnknown` rather than a dead-letter (see ``looked_up``)."""
        return await looked_up(self._find(token, author, commentary, since=since), earlier)

    async def _find(self, token: str, author: str, commentary: str, *, since: float) -> Published | None:
        """Our post among an organization's posts created since ``since`` (less the clock-skew
        margin), newest first, page by page; :class:`LookupTooDeep` if the page limit comes first."""
        earliest_ms = (since - self._settings.lookup_clock_skew_seconds) * 1000
        headers = {**self._headers(token, json_body=False), "X-RestLi-Method": "FINDER"}
        query = f"author={quote(author, safe='')}&q=author&count={PAGE_SIZE}&sortBy=CREATED"
        start = 0
        for _ in range(max(1, self._settings.lookup_max_pages)):
            try:
                response = await self._request(
                    "GET", f"{self._base}/rest/posts?{query}&start={start}", headers=headers
                )
            except httpx.HTTPError as exc:
                raise transport_error("linkedin", "listing recent posts", exc) from exc
            if response.status_code != 200:
                raise map_error(response, "listing recent posts")
            body = _json(response)
            elements = [e for e in body.get("elements") or [] if isinstance(e, dict) and e.get("id")]
            for element in elements:
                if self._matches(element, commentary, earliest_ms):
                    return self._published(str(element["id"]))
            oldest = min((_created(e) for e in elements), default=None)
            if oldest is None or oldest < earliest_ms or not _has_next(body, len(elements)):
                return None
            start += len(elements)
        raise LookupTooDeep("linkedin", self._settings.lookup_max_pages, since)


def _is_member(author: str) -> bool:
    return not author.startswith("urn:li:organization:")


def _member_unknown(author: str) -> OutcomeUnknown:
    return OutcomeUnknown(
        f"linkedin: an earlier create for {author} may have been published; LinkedIn lets no app "
        "list or read a member's posts, and re-sending could post twice: check the profile",
        code="linkedin_member_outcome_unknown",
    )


def _created(element: dict[str, Any]) -> float:
    value = element.get("createdAt") or element.get("publishedAt") or 0
    return float(value) if isinstance(value, int | float) else 0.0


def _has_next(body: dict[str, Any], returned: int) -> bool:
    """Does the finder have another page? Rest.li gives a ``next`` link; without links, a full page
    may be followed by more."""
    paging = body.get("paging") or {}
    links = paging.get("links")
    if isinstance(links, list):
        return any(isinstance(link, dict) and link.get("rel") == "next" for link in links)
    return returned >= int(paging.get("count") or PAGE_SIZE)
