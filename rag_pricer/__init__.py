"""rag-pricer: estimate a product's price in USD from its description, with the evidence behind it.

>>> from rag_pricer import Estimator
>>> Estimator.from_settings().estimate("Delphi FG0166 fuel pump module").price  # doctest: +SKIP
"""

from rag_pricer.api import Estimator
from rag_pricer.items import Item, read_items
from rag_pricer.llms.usage import Usage
from rag_pricer.pricing.pricer import Pricer
from rag_pricer.pricing.registry import register, registry
from rag_pricer.pricing.values import Comparable, Estimate
from rag_pricer.query import InvalidQuery, Query
from rag_pricer.settings import Settings

__all__ = [
    "Comparable",
    "Estimate",
    "Estimator",
    "InvalidQuery",
    "Item",
    "Pricer",
    "Query",
    "Settings",
    "Usage",
    "read_items",
    "register",
    "registry",
]
__version__ = "0.1.0"
