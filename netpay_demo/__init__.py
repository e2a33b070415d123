"""The demo: one command brings up a broker, two vendors and the wallet; ``--tour`` proves the system end to end."""
