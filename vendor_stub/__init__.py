"""NetPay reference vendor: a small shop that takes e-coins, hands chains over to other vendors and redeems them."""
