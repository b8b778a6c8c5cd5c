"""The data pipeline: raw Amazon metadata -> curated items -> the Chroma knowledge base.

``ingest`` imports ``rag_pricer`` (items, embeddings, store); ``rag_pricer`` never imports ``ingest``.
"""
