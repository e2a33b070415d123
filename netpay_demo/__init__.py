"""netpay_demo package."""
