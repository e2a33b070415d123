"""wallet_app package."""
