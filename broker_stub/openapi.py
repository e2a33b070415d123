"""JSON schemas for the OpenAPI document: request bodies (parsed strictly by :mod:`netpay`) and error answers."""

from __future__ import annotations

from typing import Any

__all__ = ["ERRORS", "body", "obj"]

HEX = {"type": "string", "pattern": "^[0-9a-f]*$"}
MONEY = {
    "type": "object",
    "required": ["amount", "currency"],
    "properties": {"amount": {"type": "integer"}, "currency": {"type": "string", "minLength": 3, "maxLength": 3}},
    "additionalProperties": False,
}
CARD = {
    "type": "object",
    "required": ["number", "exp_month", "exp_year", "cvc"],
    "properties": {
        "number": {"type": "string", "example": "4242 4242 4242 4242"},
        "exp_month": {"type": "integer"},
        "exp_year": {"type": "integer"},
        "cvc": {"type": "string"},
    },
    "additionalProperties": False,
}


def signed(type_: str) -> dict[str, Any]:
    """Schema of a ``Signed[...]`` wire object of one type."""
    return {
        "type": "object",
        "required": ["type", "version", "body", "signer", "signature"],
        "properties": {
            "type": {"type": "string", "enum": [type_]},
            "version": {"type": "integer"},
            "body": {"type": "object"},
            "signer": HEX,
            "signature": HEX,
        },
        "additionalProperties": False,
    }


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
        "additionalProperties": False,
    }


def body(schema: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` declaring a required JSON request body."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_ERROR = {
    "description": "refused; see docs/protocol.md (error codes) for the codes",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message", "details"],
                        "properties": {
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                            "details": {"type": "object"},
                        },
                    }
                },
            }
        }
    },
}

#: Error answers every route may give.
ERRORS: dict[int | str, dict[str, Any]] = {
    code: _ERROR for code in (400, 401, 402, 403, 404, 405, 409, 410, 413, 415, 422, 503)
}
