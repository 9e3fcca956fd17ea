"""Request dependencies: who is calling (the API key → a :class:`Principal`) and what they may do.

Authentication runs before FastAPI reads the body (see :class:`AuthenticatedRoute`): a caller
without a valid key learns nothing, not even whether their JSON parses. The key's checksum is
checked first, so a mistyped or made-up key is refused without any lookup; a well-formed key is
then looked up by its SHA-256 in the watch-fed key index, which is how a revocation takes effect
within a watch round trip.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, cast

from fastapi import Depends, Header, Request, Response, Security
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from socialpub.api.errors import BadRequest, Forbidden, ServiceUnavailable, Unauthorized
from socialpub.api.idempotency import MAX_KEY_LENGTH, IdempotentRequest, fingerprint, record_name
from socialpub.api.runtime import Runtime
from socialpub.kube.tenants import Tenant, namespace_owner, namespace_stamp
from socialpub.models.keys import Mode, Scope, checksum_ok, hash_key

__all__ = [
    "AuthenticatedRoute",
    "IdempotencyDep",
    "Manager",
    "Principal",
    "PrincipalDep",
    "Publisher",
    "RuntimeDep",
    "Viewer",
    "authenticate",
    "get_principal",
    "get_runtime",
    "idempotency",
    "require_scope",
]

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="A secret API key: `Authorization: Bearer sk_live_…` or `sk_test_…` (sandbox).",
)


def get_runtime(request: Request) -> Runtime:
    return cast(Runtime, request.app.state.runtime)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


@dataclass(frozen=True)
class Principal:
    """The caller: a tenant, in one mode, reaching one namespace, with some scopes."""

    tenant: str
    mode: Mode
    namespace: str
    scopes: frozenset[Scope]
    key_id: str


def authenticate(request: Request) -> Principal:
    """The principal behind the request's ``Authorization`` header, or a 401."""
    runtime = get_runtime(request)
    if not runtime.synced:
        raise ServiceUnavailable(
            "the api is starting and cannot check keys yet; retry shortly",
            code="not_ready",
            headers={"Retry-After": "1"},
        )
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized(
            "send an API key: Authorization: Bearer sk_live_… or sk_test_…",
            code="missing_api_key",
            invalid_token=False,
        )
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("use the Bearer scheme: Authorization: Bearer sk_…", code="invalid_api_key")
    if not checksum_ok(key):
        raise Unauthorized("this is not a valid API key (wrong format or checksum)", code="invalid_api_key")
    record = runtime.key_index.get(hash_key(key))
    if record is None:
        raise Unauthorized("unknown API key", code="invalid_api_key")
    if not record.active:
        raise Unauthorized("this API key has been revoked", code="api_key_revoked")
    tenant_obj = runtime.tenants.get("", record.tenant)
    if tenant_obj is None:
        raise Unauthorized("this API key's tenant no longer exists", code="invalid_api_key")
    if record.tenant_uid is None or record.tenant_uid != (tenant_obj.get("metadata") or {}).get("uid"):
        # Made for a tenant of this name that was deleted (and perhaps created again), or a
        # record from before keys were bound to tenant uids that was never migrated.
        raise Unauthorized("this API key has been revoked", code="api_key_revoked")
    tenant = Tenant.from_object(tenant_obj)
    namespace = tenant.namespace(record.mode)
    _check_owner(runtime, tenant.name, record.mode, namespace)
    return Principal(
        tenant=tenant.name,
        mode=record.mode,
        namespace=namespace,
        scopes=record.scopes,
        key_id=record.id,
    )


def _check_owner(runtime: Runtime, tenant: str, mode: Mode, namespace: str) -> None:
    """Refuse (503 ``tenant_not_ready``) unless ``namespace`` is this tenant's, in this mode.

    The tenant's spec alone does not make a namespace its own: another tenant may name it too
    (a copied manifest, a typo — then it is nobody's, or one tenant would reach the other's
    posts and accounts), or it may be stamped for an earlier tenant of the same name (whose
    live accounts and tokens it holds). The rule is :func:`namespace_owner`, which the
    operator applies too, so the api never serves a namespace the operator would not publish
    from. Ownership is the operator's ``Ready`` condition's business; until it holds, keys wait.
    """
    stamp = namespace_stamp(runtime.namespaces.get("", namespace))
    if namespace_owner(namespace, runtime.tenant_index.naming(namespace), stamp) == (tenant, mode):
        return
    raise ServiceUnavailable(
        f"tenant {tenant}'s {mode.value} namespace {namespace!r} is not the tenant's alone: another "
        "tenant names it too, or it was made for another tenant (one deleted under this name) and "
        "has not been adopted. A platform engineer must fix the SocialTenant (see its Ready "
        "condition: kubectl get socialtenants -o wide)",
        code="tenant_not_ready",
    )


async def get_principal(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Principal:
    """The authenticated caller (already checked by :class:`AuthenticatedRoute`)."""
    principal = getattr(request.state, "principal", None)
    if isinstance(principal, Principal):
        return principal
    return authenticate(request)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_scope(scope: Scope) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: the principal, if its key holds ``scope``; else 403 naming the scope."""

    async def check(principal: PrincipalDep) -> Principal:
        if scope not in principal.scopes:
            raise Forbidden(
                f"this API key lacks the scope {scope.value}",
                code="insufficient_scope",
                details={"required_scope": scope.value},
            )
        return principal

    check.__name__ = f"require_{scope.name.lower()}"
    return check


Viewer = Annotated[Principal, Depends(require_scope(Scope.VIEW))]
Manager = Annotated[Principal, Depends(require_scope(Scope.MANAGE))]
Publisher = Annotated[Principal, Depends(require_scope(Scope.PUBLISH))]


async def idempotency(
    request: Request,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description=(
                "Makes the POST safe to retry: a retry with the same key and body returns the first "
                "response (with `Idempotent-Replayed: true`); the same key with another body is 422; "
                "while the first is still running, 409. 1 to 255 characters; kept 24 hours; scoped "
                "to the API key's tenant and mode. A UUID v4 is a good key."
            ),
            examples=["8e03978e-40d5-43e8-bc93-6894a57f9324"],
            # Declared, not enforced here: the check below answers 400 `invalid_idempotency_key`.
            json_schema_extra={"minLength": 1, "maxLength": MAX_KEY_LENGTH},
        ),
    ] = None,
) -> IdempotentRequest:
    """The request's idempotency context. Nothing is claimed here: FastAPI validates the body
    only after solving dependencies, and an invalid request must not hold the key."""
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_KEY_LENGTH:
        raise BadRequest(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
            code="invalid_idempotency_key",
            details={"max_length": MAX_KEY_LENGTH},
        )
    body = await request.body()
    return IdempotentRequest(
        store=runtime.idempotency,
        namespace=principal.namespace,
        key=idempotency_key,
        record=record_name(principal.tenant, principal.mode.value, idempotency_key or ""),
        fingerprint=fingerprint(request.method, request.url.path, body),
        method=request.method,
        path=request.url.path,
    )


IdempotencyDep = Annotated[IdempotentRequest, Depends(idempotency)]


class AuthenticatedRoute(APIRoute):
    """A route that authenticates before FastAPI reads and validates the body.

    FastAPI parses the JSON body before it solves dependencies, so with a dependency alone an
    anonymous caller would get 400/422 answers about their payload; here they get 401 first.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def authenticated(request: Request) -> Response:
            request.state.principal = authenticate(request)
            return await handler(request)

        return authenticated
