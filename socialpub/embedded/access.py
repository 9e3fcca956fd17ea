"""Who may talk to the embedded Kubernetes API: the local clients holding its token, nobody else.

The server listens on loopback, but loopback is reachable from every web page the developer
opens. A page can ``fetch(..., {mode: "no-cors"})`` a write into it (it cannot read the answer,
but the object is stored), and a DNS-rebinding page (``evil.example`` resolving to 127.0.0.1)
can read everything, Secrets included. So, as a real API server does, every request is checked
before it is routed:

* ``Host`` must name the address and port the server serves (127.0.0.1, ``localhost``, or
  ``[::1]`` when served there); a rebinding page sends its own host name (403 Forbidden).
* ``Origin`` and ``Sec-Fetch-*`` are only ever sent by browsers; no legitimate client of a
  Kubernetes API (kubectl, client-go, the ``kubernetes`` package, kopf) sends them (403).
* ``Authorization: Bearer <token>`` must carry the server's token, compared in constant time
  (401 Unauthorized, as kube-apiserver answers a missing or wrong credential). A page cannot
  attach that header without a CORS preflight, and the preflight itself is refused above.

``/healthz``, ``/livez`` and ``/readyz`` answer without a token (kube-apiserver serves them to
anonymous users too): they say only ``ok``. They still pass the Host and browser checks.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from socialpub.embedded.errors import ApiError

__all__ = ["OPEN_PATHS", "AccessPolicy", "loopback_hosts"]

OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
"""Paths served without a token: they answer ``ok`` and nothing else."""

_LOOPBACK_V4 = ("127.0.0.1", "localhost")
_LOOPBACK_V6 = ("[::1]", "localhost")


def loopback_hosts(bind_host: str, port: int) -> frozenset[str]:
    """Every ``Host`` header value naming the server bound at ``bind_host``:``port``."""
    if bind_host in ("127.0.0.1", "localhost"):
        names: tuple[str, ...] = _LOOPBACK_V4
    elif bind_host in ("::1", "[::1]"):
        names = _LOOPBACK_V6
    else:
        names = (f"[{bind_host}]" if ":" in bind_host else bind_host,)
    hosts = {f"{name}:{port}" for name in names}
    if port == 80:
        hosts.update(names)  # a client may leave the default port out
    return frozenset(hosts)


class AccessPolicy:
    """The checks above, for one server (its token and the hosts it answers to)."""

    def __init__(self, token: str, hosts: frozenset[str]) -> None:
        if not token:
            raise ValueError("the embedded API needs a non-empty token")
        self._token = token.encode()
        self._hosts = hosts

    def check(self, path: str, headers: Mapping[str, str]) -> None:
        """Raise the :class:`ApiError` a request with ``headers`` to ``path`` gets, if any."""
        host = headers.get("Host", "").lower()
        if host not in self._hosts:
            raise _forbidden(f"requests for host {host!r} are not served here")
        if "Origin" in headers:
            raise _forbidden("requests from web pages (with an Origin header) are not served")
        if any(name.lower().startswith("sec-fetch-") for name in headers):
            raise _forbidden("requests from web browsers (with Sec-Fetch headers) are not served")
        if path in OPEN_PATHS:
            return
        if not self._authenticated(headers.get("Authorization", "")):
            raise ApiError(401, "Unauthorized", "Unauthorized")

    def _authenticated(self, authorization: str) -> bool:
        scheme, _, credential = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        # aiohttp decodes header bytes as UTF-8 with surrogate escapes: a credential that is not
        # UTF-8 (``Bearer \xff\xfe``) holds surrogates, which plain ``encode()`` refuses. Turn it
        # back into the bytes that were sent; they cannot equal the token, so the answer is 401.
        presented = credential.strip().encode("utf-8", "surrogateescape")
        return hmac.compare_digest(presented, self._token)


def _forbidden(why: str) -> ApiError:
    return ApiError(403, "Forbidden", f"forbidden: {why}")
