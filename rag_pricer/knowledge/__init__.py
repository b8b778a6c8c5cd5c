"""The knowledge base: products embedded (``embeddings``, ``onnx_embedder``) into a Chroma store
(``store``) and the nearest ones found for a description (``retrieval``)."""
