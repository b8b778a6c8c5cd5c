"""The knowledge base: products embedded (``embeddings``, ``onnx_embedder``) into a Chroma store
(``store``) and the nearest ones found for a description (``retrieval``); ``langchain`` offers the
store to LangChain chains as a read-only vector store."""
