"""Accounts as the REST API shows them: the active accounts of the caller's tenant and mode."""

from __future__ import annotations

from socialpub.api.deps import Principal
from socialpub.api.runtime import Runtime
from socialpub.api.schemas import Account
from socialpub.api.services.mapping import account_from_object, is_active_account

__all__ = ["list_active"]


def list_active(runtime: Runtime, principal: Principal) -> list[Account]:
    """Active accounts in the principal's namespace, by id (sandbox ones for ``sk_test_`` keys)."""
    accounts = [
        account
        for obj in runtime.account_index.in_namespace(principal.namespace)
        if is_active_account(obj) and (account := account_from_object(obj)) is not None
    ]
    return sorted(accounts, key=lambda a: a.id)
