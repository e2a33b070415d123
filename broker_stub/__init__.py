"""The NetPay reference broker: accounts, coin issue, vendor certificates, custody, redemption, ledger, revocation.

Start it with ``netpay-broker`` (see :mod:`broker_stub.cli`) or build the ASGI app with
:func:`broker_stub.app.create_app`.
"""
