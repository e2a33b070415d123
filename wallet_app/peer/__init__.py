"""Selling from the wallet (P2P-NetPay, issue 20): the shared files, the peer server and buying from other peers.

The peer server is a reference vendor (``vendor_stub``'s payment desk, custody book, spend reporter and redeemer --
the same code, not a copy) whose catalog is the files the user chose to share, plus a download endpoint. It runs on
its own interface and port, is off by default, and never shares anything with the wallet's loopback callback.
"""
