"""The HTTP service: ``create_app()`` builds the FastAPI app; ``rag-pricer serve`` runs it."""

from rag_pricer.service.app import create_app

__all__ = ["create_app"]
