"""A fake Facebook Graph API for Pages: ``/{page}/feed``, ``/{page}/photos``, ``/{page}/posts``
and ``DELETE /{post}``, as documented (../shared/reference/platforms.md section B).

It checks the token (``access_token`` parameter or Bearer; 190 with subcode 463/460/467
otherwise), requires ``message``, ``link`` or ``attached_media`` on a feed post, ``url`` on a
photo, and that every ``attached_media`` id is an unpublished photo of the same Page. Answers
carry the real shapes (``{"id": "<page>_<post>"}``, ``{"id", "post_id"}``) and the usage
headers (``X-App-Usage``, ``X-Business-Use-Case-Usage``) from :attr:`app_usage` and
:attr:`page_usage`. The same message posted twice in a row on a Page is refused with 506.
``/{page}/posts`` pages as Graph does (newest first, ``since``/``until``, ``limit`` at most 100,
cursors and ``paging.next``; see :func:`tests.fakes.graph.page_of`); :meth:`seed` fills a Page.
"""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes.base import record_of
from tests.fakes.graph import FakeGraph, as_bool, as_json, graph_error, page_of


def _graph_time(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


class FakeFacebook(FakeGraph):
    name = "facebook"

    def __init__(self) -> None:
        super().__init__()
        self.posts: list[dict[str, Any]] = []
        self.photos: dict[str, dict[str, Any]] = {}
        self.app_usage: dict[str, int] = {"call_count": 1, "total_time": 1, "total_cputime": 1}
        self.page_usage: dict[str, dict[str, Any]] = {}
        """page id -> {"call_count": %, "estimated_time_to_regain_access": minutes, …}."""
        self._ids = itertools.count(100_000_000_000_001)

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.posts.clear()
            self.photos.clear()
            self.app_usage = {"call_count": 1, "total_time": 1, "total_cputime": 1}
            self.page_usage.clear()

    def posts_of(self, page: str) -> list[dict[str, Any]]:
        with self._lock:
            return [p for p in self.posts if p["page"] == page]

    def usage_headers(self, path: str) -> dict[str, str]:
        headers = {"X-App-Usage": json.dumps(self.app_usage)}
        page = path.split("/", 1)[0]
        usage = self.page_usage.get(page)
        if usage is not None:
            entry = {
                "type": "pages",
                "call_count": 0,
                "total_cputime": 0,
                "total_time": 0,
                "estimated_time_to_regain_access": 0,
                **usage,
            }
            headers["X-Business-Use-Case-Usage"] = json.dumps({page: [entry]})
        return headers

    async def dispatch(self, request: web.Request, parts: list[str]) -> web.Response:
        method = request.method
        if len(parts) == 2 and method == "POST" and parts[1] == "feed":
            return self._feed(request, parts[0])
        if len(parts) == 2 and method == "POST" and parts[1] == "photos":
            return self._photo(request, parts[0])
        if len(parts) == 2 and method == "GET" and parts[1] in ("posts", "published_posts", "feed"):
            return self._list(request, parts[0])
        if len(parts) == 1 and method == "DELETE":
            with self._lock:
                before = len(self.posts)
                self.posts = [p for p in self.posts if p["id"] != parts[0]]
                found = len(self.posts) != before
            if not found:
                return graph_error(100, "Unsupported delete request", subcode=33)
            return web.json_response({"success": True})
        if len(parts) == 1 and method == "GET":
            with self._lock:
                for post in self.posts:
                    if post["id"] == parts[0]:
                        return web.json_response(self._public(post))
            return graph_error(100, f"Object with ID '{parts[0]}' does not exist", subcode=33)
        return graph_error(100, f"Unknown path components: /{'/'.join(parts)}")

    def _new_post(self, page: str, **fields: Any) -> dict[str, Any]:
        post = {"id": f"{page}_{next(self._ids)}", "page": page, "created_time": time.time(), **fields}
        self.posts.append(post)
        return post

    def _feed(self, request: web.Request, page: str) -> web.Response:
        record = record_of(request)
        message = record.param("message")
        link = record.param("link")
        attached: list[str] = []
        i = 0
        while (entry := record.param(f"attached_media[{i}]")) is not None:
            value = as_json(entry)
            if not isinstance(value, dict) or "media_fbid" not in value:
                return graph_error(100, f'(#100) attached_media[{i}] must be {{"media_fbid": …}}')
            attached.append(str(value["media_fbid"]))
            i += 1
        whole = as_json(record.param("attached_media"))
        if isinstance(whole, list):
            attached += [str(m.get("media_fbid")) for m in whole if isinstance(m, dict)]
        if not message and not link and not attached:
            return graph_error(100, "(#100) The post is empty: message, link or attached_media is required")
        with self._lock:
            for media_id in attached:
                photo = self.photos.get(media_id)
                if photo is None or photo["page"] != page or photo["published"]:
                    return graph_error(100, f"(#100) attached_media {media_id} is not an unpublished photo")
            mine = [p for p in self.posts if p["page"] == page]
            if message and mine and mine[-1].get("message") == message:
                return graph_error(506, "(#506) Duplicate status message")
            post = self._new_post(page, message=message, link=link, attached_media=attached)
            for media_id in attached:
                self.photos[media_id]["post_id"] = post["id"]
        return web.json_response({"id": post["id"]})

    def _photo(self, request: web.Request, page: str) -> web.Response:
        record = record_of(request)
        url = record.param("url")
        if not url and "multipart" not in request.headers.get("Content-Type", ""):
            return graph_error(324, "(#324) Requires upload file", subcode=None)
        published = as_bool(record.param("published"), True)
        caption = record.param("caption") or record.param("message")
        with self._lock:
            photo_id = str(next(self._ids))
            photo = {
                "id": photo_id,
                "page": page,
                "url": url,
                "caption": caption,
                "alt_text_custom": record.param("alt_text_custom"),
                "published": published,
                "post_id": None,
            }
            self.photos[photo_id] = photo
            if not published:
                return web.json_response({"id": photo_id})
            mine = [p for p in self.posts if p["page"] == page]
            if caption and mine and mine[-1].get("message") == caption:
                del self.photos[photo_id]
                return graph_error(506, "(#506) Duplicate status message")
            post = self._new_post(page, message=caption, link=None, attached_media=[photo_id])
            photo["post_id"] = post["id"]
        return web.json_response({"id": photo_id, "post_id": post["id"]})

    @staticmethod
    def _public(post: dict[str, Any]) -> dict[str, Any]:
        out = {"id": post["id"], "created_time": _graph_time(post["created_time"])}
        if post.get("message"):
            out["message"] = post["message"]
        out["permalink_url"] = f"https://www.facebook.com/{post['id']}"
        return out

    def _list(self, request: web.Request, page: str) -> web.Response:
        with self._lock:
            mine = [p for p in self.posts if p["page"] == page and self.listed(p["created_time"])]
        return page_of(
            request, mine, created=lambda p: p["created_time"], public=self._public, base_url=self.url
        )

    def seed(self, page: str, count: int, *, at: float | None = None, prefix: str = "Seeded") -> None:
        """Store ``count`` posts on ``page`` created at ``at`` (default now), a millisecond apart."""
        start = at if at is not None else time.time()
        with self._lock:
            for i in range(count):
                self._new_post(page, message=f"{prefix} post {i}", link=None, attached_media=[])
                self.posts[-1]["created_time"] = start + i / 1000
