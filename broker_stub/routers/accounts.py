"""Customer accounts and sessions: ``POST /v1/accounts``, ``POST /v1/sessions``, ``GET /v1/account``, statement,
top-ups, cash-outs and the account's chains."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from broker_stub.openapi import CARD, ERRORS, MONEY, body, obj
from broker_stub.routers.deps import broker_of, idempotent_account_write, json_body, require_session, run

router = APIRouter(tags=["accounts"], responses=ERRORS)

_CREDENTIALS = obj(
    {"username": {"type": "string", "example": "alice"}, "password": {"type": "string", "example": "correct horse"}}
)


@router.post("/v1/accounts", status_code=201, summary="Register a customer account", openapi_extra=body(_CREDENTIALS))
async def register(request: Request) -> JSONResponse:
    data = await json_body(request)
    return JSONResponse(await run(broker_of(request).accounts.register, data), status_code=201)


@router.post("/v1/sessions", summary="Log in: a session token that expires", openapi_extra=body(_CREDENTIALS))
async def login(request: Request) -> dict[str, Any]:
    data = await json_body(request)
    result: dict[str, Any] = await run(broker_of(request).accounts.login, data)
    return result


@router.get("/v1/account", summary="The logged-in account and its balance")
async def account(request: Request, authorization: str | None = Header(None)) -> dict[str, Any]:
    account_id = await require_session(request, authorization)
    result: dict[str, Any] = await run(broker_of(request).accounts.account, account_id)
    return result


@router.get("/v1/account/statement", summary="Every movement of the account's money")
async def statement(request: Request, authorization: str | None = Header(None)) -> dict[str, Any]:
    account_id = await require_session(request, authorization)
    result: dict[str, Any] = await run(broker_of(request).accounts.statement, account_id)
    return result


@router.post(
    "/v1/account/topups",
    status_code=201,
    summary="Add money with the test card processor",
    openapi_extra=body(obj({"amount": MONEY, "card": CARD})),
)
async def topup(
    request: Request,
    authorization: str | None = Header(None),
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
) -> JSONResponse:
    return await idempotent_account_write(request, authorization, idempotency_key, lambda b: b.accounts.topup)


@router.get("/v1/account/chains", summary="Every chain bought by this account (lost-wallet recovery)")
async def chains(request: Request, authorization: str | None = Header(None)) -> dict[str, Any]:
    account_id = await require_session(request, authorization)
    broker = broker_of(request)
    await run(broker.closing.settle_due, account_id)
    result: dict[str, Any] = await run(broker.issuing.list_chains, account_id)
    return result


@router.post(
    "/v1/account/cashouts",
    status_code=201,
    summary="Pay the account balance back to a card that paid in, with the test card processor",
    openapi_extra=body(obj({"amount": MONEY, "card": CARD})),
)
async def cashout(
    request: Request,
    authorization: str | None = Header(None),
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
) -> JSONResponse:
    return await idempotent_account_write(request, authorization, idempotency_key, lambda b: b.accounts.cashout)
