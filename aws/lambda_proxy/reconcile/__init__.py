"""Settling jobs that are past their deadline by asking Modal what became of them."""
