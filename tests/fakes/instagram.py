"""A fake Instagram Graph API (content publishing): containers, their status, ``media_publish``,
``content_publishing_limit``, the media list and media by id, as documented
(../shared/reference/platforms.md section C).

Containers start ``IN_PROGRESS`` and turn ``FINISHED`` after :attr:`polls_to_finish` status reads;
:attr:`fates` makes the next containers end ``ERROR`` (with a subcode in ``status``) or
``EXPIRED`` instead. ``media_publish`` refuses a container that is not ``FINISHED`` (9007/
2207027), a carousel item, a published container, and any publish over :attr:`quota_total` in
24 hours (9/2207042). With :attr:`fetch_media` on, ``image_url`` is downloaded (TLS not
verified) and must be a JPEG of at most 8 MiB (36001/2207005, 36000/2207004); captions are at
most 2200 characters and carousels take 2-10 children (100/2207028). ``/{ig-user-id}/media``
pages as Graph does (newest first, ``since``/``until``, ``limit`` at most 100, cursors and
``paging.next``; see :func:`tests.fakes.graph.page_of`); :meth:`seed` fills an account.
"""

from __future__ import annotations

import itertools
import re
import ssl
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.base import record_of
from tests.fakes.graph import FakeGraph, as_bool, graph_error, page_of


def _ig_time(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


class FakeInstagram(FakeGraph):
    name = "instagram"

    def __init__(self) -> None:
        super().__init__()
        self.containers: dict[str, dict[str, Any]] = {}
        self.media: list[dict[str, Any]] = []
        self.polls_to_finish = 0
        self.fates: list[str] = []
        """The next containers' end states instead of FINISHED: "ERROR:<subcode>" or "EXPIRED"."""
        self.quota_total = 100
        self.fetch_media = True
        self._ids = itertools.count(17_900_000_000_000_001)
        self._session: aiohttp.ClientSession | None = None

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.containers.clear()
            self.media.clear()
            self.polls_to_finish = 0
            self.fates = []
            self.quota_total = 100
            self.fetch_media = True

    def media_of(self, user: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.media if m["user"] == user]

    def stop(self) -> None:
        if self._session is not None:
            self.call(self._session.close())
        super().stop()

    async def dispatch(self, request: web.Request, parts: list[str]) -> web.Response:
        method = request.method
        if len(parts) == 2 and parts[1] == "media" and method == "POST":
            return await self._create(request, parts[0])
        if len(parts) == 2 and parts[1] == "media" and method == "GET":
            return self._list(request, parts[0])
        if len(parts) == 2 and parts[1] == "media_publish" and method == "POST":
            return self._publish(request, parts[0])
        if len(parts) == 2 and parts[1] == "content_publishing_limit" and method == "GET":
            return web.json_response(
                {
                    "data": [
                        {
                            "quota_usage": self._usage(parts[0]),
                            "config": {"quota_total": self.quota_total, "quota_duration": 86400},
                        }
                    ]
                }
            )
        if len(parts) == 1 and method == "GET":
            return self._get(parts[0])
        return graph_error(100, f"Unsupported request: {method} /{'/'.join(parts)}")

    # Containers.

    async def _check_image(self, url: str) -> web.Response | None:
        if not self.fetch_media:
            return None
        if self._session is None:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))
        try:
            async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
                if response.status != 200:
                    return graph_error(9004, "The media could not be fetched from this uri", subcode=2207052)
                data = await response.read()
        except (aiohttp.ClientError, TimeoutError):
            return graph_error(9004, "The media could not be fetched from this uri", subcode=2207052)
        if len(data) > 8 * 1024 * 1024:
            return graph_error(36000, "The image is too large", subcode=2207004)
        if not data.startswith(b"\xff\xd8\xff"):
            return graph_error(36001, "The image format is not supported", subcode=2207005)
        return None

    async def _create(self, request: web.Request, user: str) -> web.Response:
        record = record_of(request)
        media_type = (record.param("media_type") or "IMAGE").upper()
        caption = record.param("caption") or ""
        if len(caption) > 2200 or len(re.findall(r"#\w+", caption)) > 30:
            return graph_error(36004, "The caption is too long or has too many hashtags", subcode=2207010)
        if len(re.findall(r"(?<![\w@])@[\w.]+", caption)) > 20:
            return graph_error(100, "The caption has more than 20 @mentions", subcode=2207040)
        item = as_bool(record.param("is_carousel_item"), False)
        container: dict[str, Any] = {
            "user": user,
            "media_type": media_type,
            "caption": caption,
            "alt_text": record.param("alt_text"),
            "is_carousel_item": item,
            "children": [],
            "image_url": record.param("image_url"),
            "polls": 0,
            "status_code": "IN_PROGRESS",
            "status": "",
            "fate": None,
            "created": time.time(),
        }
        if media_type == "CAROUSEL":
            children = [c for c in (record.param("children") or "").split(",") if c]
            if not 2 <= len(children) <= 10:
                return graph_error(100, "The carousel must have 2 to 10 items", subcode=2207028)
            with self._lock:
                for child in children:
                    found = self.containers.get(child)
                    if found is None or not found["is_carousel_item"] or found["user"] != user:
                        return graph_error(100, f"Invalid carousel child {child}", subcode=2207028)
            container["children"] = children
        elif media_type == "IMAGE":
            url = container["image_url"]
            if not url:
                return graph_error(100, "The parameter image_url is required")
            refused = await self._check_image(url)
            if refused is not None:
                return refused
        else:
            return graph_error(100, f"media_type {media_type} is not supported by this fake", subcode=2207023)
        with self._lock:
            container_id = str(next(self._ids))
            container["id"] = container_id
            container["fate"] = self.fates.pop(0) if self.fates else None
            self.containers[container_id] = container
        return web.json_response({"id": container_id})

    def _advance(self, container: dict[str, Any]) -> None:
        if container["status_code"] != "IN_PROGRESS":
            return
        container["polls"] += 1
        if container["polls"] <= self.polls_to_finish:
            return
        fate = container["fate"]
        if fate == "EXPIRED":
            container["status_code"] = "EXPIRED"
        elif fate and fate.startswith("ERROR"):
            container["status_code"] = "ERROR"
            subcode = fate.partition(":")[2] or "2207001"
            container["status"] = f"Error: Media upload has failed with error code {subcode}"
        else:
            container["status_code"] = "FINISHED"

    def _get(self, object_id: str) -> web.Response:
        with self._lock:
            container = self.containers.get(object_id)
            if container is not None:
                self._advance(container)
                body = {"id": object_id, "status_code": container["status_code"]}
                if container["status"]:
                    body["status"] = container["status"]
                return web.json_response(body)
            for media in self.media:
                if media["id"] == object_id:
                    return web.json_response(self._public(media))
        return graph_error(100, f"Object with ID '{object_id}' does not exist", subcode=33)

    # Publishing.

    def _usage(self, user: str) -> int:
        cutoff = time.time() - 86400
        with self._lock:
            return sum(1 for m in self.media if m["user"] == user and m["created"] >= cutoff)

    def _publish(self, request: web.Request, user: str) -> web.Response:
        creation_id = record_of(request).param("creation_id")
        with self._lock:
            container = self.containers.get(creation_id or "")
            if container is None or container["user"] != user:
                return graph_error(24, "The media with id does not exist", subcode=2207006)
            if container["is_carousel_item"]:
                return graph_error(100, "A carousel item cannot be published on its own")
            if container["status_code"] == "PUBLISHED":
                return graph_error(100, "The media has already been published", subcode=2207001)
            if container["status_code"] == "EXPIRED":
                return graph_error(-2, "The media has expired; upload it again", subcode=2207020)
            if container["status_code"] != "FINISHED":
                return graph_error(
                    9007, "The media is not ready for publishing, please wait for a moment", subcode=2207027
                )
            if self._usage(user) >= self.quota_total:
                return graph_error(9, "The account has reached its daily publishing limit", subcode=2207042)
            if container["media_type"] == "CAROUSEL":
                for child in container["children"]:
                    if self.containers[child]["status_code"] != "FINISHED":
                        return graph_error(
                            9007, "The media is not ready for publishing, please wait", subcode=2207027
                        )
            media_id = str(next(self._ids))
            container["status_code"] = "PUBLISHED"
            self.media.append(
                {
                    "id": media_id,
                    "user": user,
                    "caption": container["caption"],
                    "media_type": "CAROUSEL_ALBUM" if container["media_type"] == "CAROUSEL" else "IMAGE",
                    "container": creation_id,
                    "children": [self.containers[c]["image_url"] for c in container["children"]],
                    "image_url": container["image_url"],
                    "alt_text": container["alt_text"],
                    "created": time.time(),
                    "permalink": f"https://www.instagram.com/p/{media_id}/",
                }
            )
        return web.json_response({"id": media_id})

    @staticmethod
    def _public(media: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": media["id"],
            "caption": media["caption"],
            "media_type": media["media_type"],
            "timestamp": _ig_time(media["created"]),
            "permalink": media["permalink"],
        }

    def _list(self, request: web.Request, user: str) -> web.Response:
        with self._lock:
            mine = [m for m in self.media if m["user"] == user and self.listed(m["created"])]
        return page_of(request, mine, created=lambda m: m["created"], public=self._public, base_url=self.url)

    def seed(self, user: str, count: int, *, at: float | None = None, prefix: str = "Seeded") -> None:
        """Store ``count`` published media of ``user`` created at ``at`` (default now), 1 ms apart."""
        start = at if at is not None else time.time()
        with self._lock:
            for i in range(count):
                media_id = str(next(self._ids))
                self.media.append(
                    {
                        "id": media_id,
                        "user": user,
                        "caption": f"{prefix} post {i}",
                        "media_type": "IMAGE",
                        "container": None,
                        "children": [],
                        "image_url": None,
                        "alt_text": None,
                        "created": start + i / 1000,
                        "permalink": f"https://www.instagram.com/p/{media_id}/",
                    }
                )
