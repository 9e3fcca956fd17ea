"""``/accounts``: the connected accounts a post can target."""

from __future__ import annotations

from fastapi import APIRouter

from socialpub.api.deps import AuthenticatedRoute, RuntimeDep, Viewer
from socialpub.api.responses import errors
from socialpub.api.schemas import AccountList, AccountListResponse
from socialpub.api.services import accounts as accounts_service

__all__ = ["router"]

router = APIRouter(prefix="/accounts", tags=["accounts"], route_class=AuthenticatedRoute)


@router.get(
    "",
    response_model=AccountListResponse,
    summary="List active accounts",
    responses=errors(401, 403, 503),
)
async def list_accounts(principal: Viewer, runtime: RuntimeDep) -> AccountListResponse:
    """The active accounts of the key's tenant and mode (sandbox accounts for `sk_test_` keys),
    by id. Use their ids as `targets[].account_id`."""
    return AccountListResponse(data=AccountList(accounts=accounts_service.list_active(runtime, principal)))
