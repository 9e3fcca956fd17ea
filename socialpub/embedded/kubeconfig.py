"""A kubeconfig for the embedded server, so kubectl, kopf and the ``kubernetes`` client just work."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

__all__ = ["write_kubeconfig"]


def write_kubeconfig(path: Path, server_url: str, *, namespace: str = "default") -> Path:
    """Write a kubeconfig with one context, ``socialpub``, pointing at ``server_url``.

    The embedded server binds to loopback and needs no credentials, so the user entry is empty.
    The file is written atomically (a half-written kubeconfig confuses every client).
    """
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "socialpub", "cluster": {"server": server_url}}],
        "users": [{"name": "socialpub", "user": {}}],
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
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    os.replace(tmp, path)
    return path
