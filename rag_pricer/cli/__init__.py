"""``rag-pricer``: one module per command; ``app`` wires them together."""
