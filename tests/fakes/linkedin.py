"""A fake LinkedIn REST API: Posts (create, finder by author, get, delete) and Images, as
documented (see ../shared/reference/platforms.md section A and docs/platforms.md).

What it checks, like LinkedIn: ``Authorization: Bearer`` with a known token (401 65600/65601/
65602 otherwise), ``LinkedIn-Version`` among the active versions (426 NONEXISTENT_VERSION),
``X-Restli-Protocol-Version: 2.0.0``, the required post fields, image URNs that were initialized
*and* uploaded, 2-20 images in ``multiImage``, and commentary of at most 3000 characters. It
answers 201 with an empty body and the URN in ``x-restli-id``, refuses identical commentary by
the same author with 422 DUPLICATE_POST (unless :attr:`refuse_duplicates` is off: LinkedIn's
duplicate detection is not guaranteed, so tests also run against one that accepts them), and
emulates the little-text truncation: the visible text of a post ends at the first unescaped
reserved character (``visible`` on the stored post).

The ``q=author`` finder pages like Rest.li: ``start`` / ``count`` (at most :data:`MAX_COUNT`,
default 10), newest first by ``sortBy`` (``LAST_MODIFIED``, the default, or ``CREATED``), and
``paging`` with ``start``, ``count`` and a ``next`` link while more posts remain. :meth:`seed`
stores posts directly, to give an author more posts than one page holds.
"""

from __future__ import annotations

import itertools
import time
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web

from tests.fakes.base import FakeServer, bearer, record_of

ACTIVE_VERSIONS = frozenset({"202511", "202512", "202601", "202602"})
MAX_COUNT = 100
SORT_KEYS = {"LAST_MODIFIED": "lastModifiedAt", "CREATED": "createdAt"}
RESERVED = frozenset("\\|{}@[]()<>#*_~")


def visible_text(commentary: str) -> str:
    """What LinkedIn shows for ``commentary``: escapes and templates resolved, cut at the first
    unescaped reserved character (the silent truncation of the real API)."""
    out: list[str] = []
    i = 0
    while i < len(commentary):
        c = commentary[i]
        if c == "\\" and i + 1 < len(commentary):
            out.append(commentary[i + 1])
            i += 2
            continue
        if commentary.startswith("{hashtag|#|", i):
            end = commentary.find("}", i)
            if end == -1:
                break
            out.append("#" + visible_text(commentary[i + len("{hashtag|#|") : end]))
            i = end + 1
            continue
        if commentary.startswith("@[", i):
            close = commentary.find("](", i)
            end = commentary.find(")", close) if close != -1 else -1
            if close != -1 and end != -1:
                out.append(commentary[i + 2 : close])
                i = end + 1
                continue
        if c in RESERVED:
            break
        out.append(c)
        i += 1
    return "".join(out)


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"status": status, "message": message, **extra}, status=status)


class FakeLinkedIn(FakeServer):
    name = "linkedin"

    def __init__(self) -> None:
        super().__init__()
        self.tokens: dict[str, str] = {}
        """token -> "valid" | "expired" | "revoked"."""
        self.posts: list[dict[str, Any]] = []
        self.images: dict[str, dict[str, Any]] = {}
        self.refuse_duplicates = True
        """Answer identical commentary by the same author with 422 DUPLICATE_POST."""
        self._ids = itertools.count(7_100_000_000_000_000_000)

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.tokens.clear()
            self.posts.clear()
            self.images.clear()
            self.refuse_duplicates = True

    def seed(self, author: str, count: int, *, at: float | None = None, prefix: str = "Seeded") -> None:
        """Store ``count`` posts by ``author`` created at ``at`` (default now), one millisecond apart."""
        start = int((at if at is not None else time.time()) * 1000)
        with self._lock:
            for i in range(count):
                self._store(author, f"{prefix} post {i}", None, "PUBLIC", start + i)

    def _store(self, author: str, commentary: str, content: Any, visibility: str, now: int) -> dict[str, Any]:
        post = {
            "id": f"urn:li:share:{next(self._ids)}",
            "author": author,
            "commentary": commentary,
            "visible": visible_text(commentary),
            "content": content,
            "visibility": visibility,
            "lifecycleState": "PUBLISHED",
            "createdAt": now,
            "publishedAt": now,
            "lastModifiedAt": now,
        }
        self.posts.append(post)
        return post

    def grant(self, token: str) -> str:
        self.tokens[token] = "valid"
        return token

    def expire(self, token: str) -> None:
        self.tokens[token] = "expired"

    def revoke(self, token: str) -> None:
        self.tokens[token] = "revoked"

    def posts_by(self, author: str) -> list[dict[str, Any]]:
        with self._lock:
            return [p for p in self.posts if p["author"] == author]

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/rest/posts", self.create_post)
        app.router.add_get("/rest/posts", self.find_posts)
        app.router.add_get("/rest/posts/{urn}", self.get_post)
        app.router.add_delete("/rest/posts/{urn}", self.delete_post)
        app.router.add_post("/rest/images", self.initialize_upload)
        app.router.add_put("/dms-uploads/{upload}", self.upload)

    # Checks every /rest call makes.

    def _auth(self, request: web.Request, *, versioned: bool = True) -> web.Response | None:
        token = bearer(request)
        state = self.tokens.get(token or "")
        if state is None:
            return _error(401, "Invalid access token", serviceErrorCode=65600)
        if state == "expired":
            return _error(
                401,
                "The token used in the request has expired",
                serviceErrorCode=65602,
                code="EXPIRED_ACCESS_TOKEN",
            )
        if state == "revoked":
            return _error(
                401,
                "The token used in the request has been revoked by the user",
                serviceErrorCode=65601,
                code="REVOKED_ACCESS_TOKEN",
            )
        if not versioned:
            return None
        version = request.headers.get("LinkedIn-Version")
        if version not in ACTIVE_VERSIONS:
            return _error(426, f"Requested version {version} is not active", code="NONEXISTENT_VERSION")
        if request.headers.get("X-Restli-Protocol-Version") != "2.0.0":
            return _error(400, "X-Restli-Protocol-Version 2.0.0 is required", code="ILLEGAL_ARGUMENT")
        return None

    @staticmethod
    def _bad(message: str, code: str = "FIELD_VALUE_INVALID", status: int = 422) -> web.Response:
        return web.json_response(
            {
                "errorDetailType": "com.linkedin.common.error.BadRequest",
                "message": message,
                "errorDetails": {"inputErrors": [{"description": message, "input": {}, "code": code}]},
                "status": status,
            },
            status=status,
        )

    # Posts.

    async def create_post(self, request: web.Request) -> web.Response:
        refused = self._auth(request)
        if refused is not None:
            return refused
        if "json" not in request.headers.get("Content-Type", ""):
            return self._bad("Content-Type must be application/json", status=400)
        body = record_of(request).json
        if not isinstance(body, dict):
            return self._bad("the body must be a JSON object", status=400)
        for name in ("author", "commentary", "visibility", "distribution", "lifecycleState"):
            if name not in body:
                return self._bad(f"/{name} is required", code="FIELD_REQUIRED")
        author, commentary = body["author"], body["commentary"]
        if not isinstance(author, str) or not author.startswith(("urn:li:organization:", "urn:li:person:")):
            return self._bad(f"invalid author {author!r}")
        if not isinstance(commentary, str) or len(commentary) > 3000:
            return self._bad("commentary must be a string of at most 3000 characters")
        if body["visibility"] not in ("PUBLIC", "CONNECTIONS", "LOGGED_IN", "CONTAINER"):
            return self._bad("invalid visibility")
        if (body.get("distribution") or {}).get("feedDistribution") not in ("MAIN_FEED", "NONE"):
            return self._bad("invalid distribution.feedDistribution")
        if body["lifecycleState"] != "PUBLISHED":
            return self._bad("invalid lifecycleState")
        problem = self._check_content(body.get("content"))
        if problem:
            return self._bad(problem)
        with self._lock:
            for post in self.posts if self.refuse_duplicates else ():
                if post["author"] == author and post["commentary"] == commentary:
                    return self._duplicate(post["id"])
            post = self._store(
                author, commentary, body.get("content"), body["visibility"], int(time.time() * 1000)
            )
            urn = post["id"]
        return web.Response(status=201, headers={"x-restli-id": urn, "x-linkedin-id": urn})

    @staticmethod
    def _member_read_denied(method: str) -> web.Response:
        """Reading a member's posts needs ``r_member_social``, which LinkedIn no longer grants."""
        return _error(
            403,
            f"Not enough permissions to access: partnerApiPostsExternal.{method}.20240501",
            serviceErrorCode=100,
            code="ACCESS_DENIED",
        )

    @staticmethod
    def _duplicate(urn: str) -> web.Response:
        return web.json_response(
            {
                "errorDetailType": "com.linkedin.common.error.BadRequest",
                "message": "com.linkedin.content.common.exception.BadRequestResponseException: "
                f"Content is a duplicate of {urn}",
                "errorDetails": {
                    "inputErrors": [
                        {"description": "Duplicate post is detected", "input": {}, "code": "DUPLICATE_POST"}
                    ]
                },
                "status": 422,
            },
            status=422,
        )

    def _check_content(self, content: Any) -> str | None:
        if content is None:
            return None
        if not isinstance(content, dict):
            return "content must be an object"
        if "media" in content:
            return self._check_image(content["media"])
        if "multiImage" in content:
            images = (content["multiImage"] or {}).get("images")
            if not isinstance(images, list) or not 2 <= len(images) <= 20:
                return "multiImage takes 2 to 20 images"
            for image in images:
                problem = self._check_image(image)
                if problem:
                    return problem
            return None
        return f"unsupported content {sorted(content)}"

    def _check_image(self, media: Any) -> str | None:
        if not isinstance(media, dict) or not isinstance(media.get("id"), str):
            return "media.id is required"
        image = self.images.get(media["id"])
        if image is None or image.get("bytes") is None:
            return f"image {media.get('id')} was not uploaded"
        alt = media.get("altText")
        if alt is not None and (not isinstance(alt, str) or len(alt) > 4086):
            return "altText must be at most 4086 characters"
        return None

    async def find_posts(self, request: web.Request) -> web.Response:
        refused = self._auth(request)
        if refused is not None:
            return refused
        if request.query.get("q") != "author" or "author" not in request.query:
            return self._bad("q=author&author=<urn> is required", status=400)
        author = request.query["author"]
        if author.startswith("urn:li:person:"):
            return self._member_read_denied("FINDER-author")
        sort_by = request.query.get("sortBy", "LAST_MODIFIED")
        if sort_by not in SORT_KEYS:
            return self._bad(f"sortBy must be one of {sorted(SORT_KEYS)}", status=400)
        try:
            start = int(request.query.get("start", "0"))
            count = min(int(request.query.get("count", "10")), MAX_COUNT)
        except ValueError:
            return self._bad("start and count must be integers", status=400)
        if start < 0 or count < 1:
            return self._bad("start must be >= 0 and count >= 1", status=400)
        key = SORT_KEYS[sort_by]
        with self._lock:
            mine = [p for p in self.posts if p["author"] == author and self.listed(p["createdAt"] / 1000)]
        mine.sort(key=lambda p: (p[key], p["id"]), reverse=True)
        page = mine[start : start + count]
        elements = [{k: v for k, v in p.items() if k != "visible"} for p in page]
        paging: dict[str, Any] = {"start": start, "count": count, "links": []}
        if start + count < len(mine):
            query = f"author={quote(author, safe='')}&q=author&sortBy={sort_by}"
            paging["links"].append(
                {
                    "type": "application/json",
                    "rel": "next",
                    "href": f"/rest/posts?{query}&start={start + count}&count={count}",
                }
            )
        return web.json_response({"elements": elements, "paging": paging})

    async def get_post(self, request: web.Request) -> web.Response:
        refused = self._auth(request)
        if refused is not None:
            return refused
        urn = unquote(request.match_info["urn"])
        with self._lock:
            for post in self.posts:
                if post["id"] == urn:
                    if post["author"].startswith("urn:li:person:"):
                        return self._member_read_denied("GET")
                    return web.json_response({k: v for k, v in post.items() if k != "visible"})
        return _error(404, f"post {urn} not found")

    async def delete_post(self, request: web.Request) -> web.Response:
        refused = self._auth(request)
        if refused is not None:
            return refused
        urn = unquote(request.match_info["urn"])
        with self._lock:
            self.posts = [p for p in self.posts if p["id"] != urn]
        return web.Response(status=204)

    # Images.

    async def initialize_upload(self, request: web.Request) -> web.Response:
        refused = self._auth(request)
        if refused is not None:
            return refused
        if request.query.get("action") != "initializeUpload":
            return self._bad("action=initializeUpload is required", status=400)
        body = record_of(request).json
        owner = ((body or {}).get("initializeUploadRequest") or {}).get("owner")
        if not isinstance(owner, str) or not owner.startswith("urn:li:"):
            return self._bad("initializeUploadRequest.owner is required", code="FIELD_REQUIRED")
        upload = f"D4E10AQ{next(self._ids)}"
        urn = f"urn:li:image:{upload}"
        with self._lock:
            self.images[urn] = {"owner": owner, "bytes": None, "content_type": None, "upload": upload}
        return web.json_response(
            {
                "value": {
                    "uploadUrlExpiresAt": int(time.time() * 1000) + 3_600_000,
                    "uploadUrl": f"{self.url}/dms-uploads/{upload}?ca=vector_feedshare",
                    "image": urn,
                }
            }
        )

    async def upload(self, request: web.Request) -> web.Response:
        refused = self._auth(request, versioned=False)
        if refused is not None:
            return refused
        upload = request.match_info["upload"]
        with self._lock:
            for image in self.images.values():
                if image["upload"] == upload:
                    image["bytes"] = record_of(request).body
                    image["content_type"] = request.headers.get("Content-Type")
                    return web.Response(status=201)
        return _error(404, "unknown upload")
