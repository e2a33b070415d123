"""Shared router helpers: the broker from the app state, session and operator-token checks, JSON bodies."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from broker_stub.core import check_idempotency_key
from broker_stub.services import Broker
from netpay.errors import AuthenticationRequired, Forbidden
from netpay_web.http import read_json

__all__ = ["broker_of", "idempotent_account_write", "json_body", "reply", "require_operator", "require_session", "run"]

run = run_in_threadpool


def broker_of(request: Request) -> Broker:
    broker: Broker = request.app.state.broker
    return broker


async def json_body(request: Request) -> Any:
    return await read_json(request)


async def require_session(request: Request, authorization: str | None) -> str:
    broker = broker_of(request)
    return await run(broker.accounts.authenticate, authorization)


def require_operator(request: Request, token: str | None) -> None:
    if not token:
        raise AuthenticationRequired("send the operator token in X-Operator-Token")
    if not hmac.compare_digest(token.encode(), broker_of(request).core.operator_token.encode()):
        raise Forbidden("wrong operator token")


def reply(status_and_body: tuple[int, Any]) -> JSONResponse:
    status, body = status_and_body
    return JSONResponse(body, status_code=status)


async def idempotent_account_write(
    request: Request,
    authorization: str | None,
    idempotency_key: str | None,
    action: Callable[[Broker], Callable[[str, Any, str], tuple[int, Any]]],
) -> JSONResponse:
    """Every request that moves an account's money has one shape: the session's account, then its Idempotency-Key,
    then the JSON body, handed to ``action(broker)``, whose (status, body) is the answer."""
    account_id = await require_session(request, authorization)
    key = check_idempotency_key(idempotency_key)
    data = await json_body(request)
    return reply(await run(action(broker_of(request)), account_id, data, key))
