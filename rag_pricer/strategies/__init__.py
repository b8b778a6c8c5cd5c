"""Pricing strategies, one module each; they register themselves in ``rag_pricer.pricing.registry``."""
