"""SocialTargets as both writers create them: the api (at once, so a read after a write sees
them) and the operator (for posts applied with kubectl). One definition keeps the two paths
identical, which is what makes them idempotent with each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from socialpub.kube.resources import LABEL_POST, POSTS, TARGETS

__all__ = ["target_manifest", "target_name"]


def target_name(post_obj: Mapping[str, Any], account_id: int) -> str:
    """``<post-name>-<accountId>``: deterministic, so a second creator gets AlreadyExists."""
    return f"{(post_obj.get('metadata') or {}).get('name')}-{account_id}"


def target_manifest(
    post_obj: Mapping[str, Any], account_id: int, override_body: str | None
) -> dict[str, Any]:
    """The SocialTarget for one entry of a post's targets, owned by the post (deletion cascades)."""
    meta = post_obj.get("metadata") or {}
    spec: dict[str, Any] = {"postName": meta["name"], "accountId": account_id}
    if override_body is not None:
        spec["overrideBody"] = override_body
    return {
        "apiVersion": TARGETS.api_version,
        "kind": TARGETS.kind,
        "metadata": {
            "name": target_name(post_obj, account_id),
            "labels": {LABEL_POST: meta["name"]},
            "ownerReferences": [
                {
                    "apiVersion": POSTS.api_version,
                    "kind": POSTS.kind,
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }
