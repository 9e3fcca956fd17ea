"""The resources socialpub reads and writes, and the label and annotation keys it owns.

One place names every kind (group, version, plural) so that the api, the operator and the CLI
address the same objects the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ACCOUNTS",
    "ANNOTATION_CREATED_AT",
    "ANNOTATION_SECRET_ROTATED_AT",
    "ANNOTATION_UPDATED_AT",
    "CONFIGMAPS",
    "EVENTS",
    "GROUP",
    "LABEL_COMPONENT",
    "LABEL_ENDPOINT",
    "LABEL_EVENT_TYPE",
    "LABEL_ID",
    "LABEL_MODE",
    "LABEL_POST",
    "LABEL_TENANT",
    "NAMESPACES",
    "POSTS",
    "SECRETS",
    "SYSTEM_NAMESPACE",
    "TARGETS",
    "TENANTS",
    "VERSION",
    "WEBHOOK_DELIVERIES",
    "WEBHOOK_ENDPOINTS",
    "Resource",
]

GROUP = "social.softsolz.uk"
VERSION = "v1alpha1"

LABEL_ID = f"{GROUP}/id"
"""The positive integer id the REST API shows, unique per kind within a namespace."""
LABEL_TENANT = f"{GROUP}/tenant"
LABEL_MODE = f"{GROUP}/mode"
"""``live`` or ``test``: which half of a tenant a namespace (or key) belongs to."""
LABEL_POST = f"{GROUP}/post"
"""On a SocialTarget: the name of its SocialPost."""
LABEL_COMPONENT = f"{GROUP}/component"
"""What a Secret or ConfigMap of ours is for (``api-key``, ``idempotency``, ``ids``)."""

LABEL_ENDPOINT = f"{GROUP}/endpoint"
"""On a SocialWebhookDelivery (and an endpoint's Secret): the name of its SocialWebhookEndpoint."""
LABEL_EVENT_TYPE = f"{GROUP}/event-type"
"""On a SocialWebhookDelivery: the event type it delivers."""

ANNOTATION_SECRET_ROTATED_AT = f"{GROUP}/secret-rotated-at"
"""On a SocialWebhookEndpoint: when its Secret last changed, so the operator re-reads it at once."""
ANNOTATION_CREATED_AT = f"{GROUP}/created-at"
ANNOTATION_UPDATED_AT = f"{GROUP}/updated-at"
"""Microsecond RFC 3339 times the REST API shows (``creationTimestamp`` has only seconds)."""

SYSTEM_NAMESPACE = "socialpub-system"
"""Where API keys live (as Secrets holding only hashes)."""


@dataclass(frozen=True)
class Resource:
    """How to address one kind over the Kubernetes API."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """The URL path of the collection, or of one object (and its subresource)."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace is not None:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{name}"
            if subresource is not None:
                base += f"/{subresource}"
        return base


TENANTS = Resource(GROUP, VERSION, "socialtenants", "SocialTenant", namespaced=False)
ACCOUNTS = Resource(GROUP, VERSION, "socialaccounts", "SocialAccount")
POSTS = Resource(GROUP, VERSION, "socialposts", "SocialPost")
TARGETS = Resource(GROUP, VERSION, "socialtargets", "SocialTarget")
WEBHOOK_ENDPOINTS = Resource(GROUP, VERSION, "socialwebhookendpoints", "SocialWebhookEndpoint")
WEBHOOK_DELIVERIES = Resource(GROUP, VERSION, "socialwebhookdeliveries", "SocialWebhookDelivery")
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
SECRETS = Resource("", "v1", "secrets", "Secret")
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
EVENTS = Resource("", "v1", "events", "Event")
