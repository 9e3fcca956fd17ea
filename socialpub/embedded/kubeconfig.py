"""A kubeconfig for the embedded server, so kubectl, kopf and the ``kubernetes`` client just work."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from socialpub.embedded.statedir import write_private

__all__ = ["write_kubeconfig"]


def write_kubeconfig(
    path: Path, server_url: str, *, token: str, ca_pem: str, namespace: str = "default"
) -> Path:
    """Write a kubeconfig with one context, ``socialpub``, for ``server_url`` with ``token``.

    ``ca_pem`` is the certificate of the CA that signed the server's (``certificate-authority-data``).

    The token is the embedded server's bearer token (``users[].user.token``), which kubectl,
    the ``kubernetes`` client and kopf send as ``Authorization: Bearer``. The file is the only
    place it is handed out, so it is 0600 from the moment it exists, and written atomically (a
    half-written kubeconfig confuses every client).
    """
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "socialpub",
                "cluster": {
                    "server": server_url,
                    "certificate-authority-data": base64.b64encode(ca_pem.encode()).decode(),
                },
            }
        ],
        "users": [{"name": "socialpub", "user": {"token": token}}],
        "contexts": [
            {
                "name": "socialpub",
                "context": {"cluster": "socialpub", "user": "socialpub", "namespace": namespace},
            }
        ],
        "current-context": "socialpub",
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_private(path, yaml.safe_dump(config, sort_keys=False))
