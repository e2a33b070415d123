"""NetPay protocol core: payword chains, signed messages, money and errors.

Shared by the wallet, the broker and the vendors. Pure Python: no Qt, no web framework.
"""

__version__ = "0.1.0"

#: The wire protocol version spoken by this package. Carried inside every signed object.
PROTOCOL_VERSION = 1

__all__ = ["PROTOCOL_VERSION", "__version__"]
