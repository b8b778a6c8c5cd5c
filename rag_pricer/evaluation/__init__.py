"""The evaluation harness: score strategies on items with business metrics, bootstrap
intervals and charts, and compare them side by side.

>>> from rag_pricer.evaluation import Evaluation
>>> result = Evaluation(pricer, items).run()            # doctest: +SKIP
>>> result.metrics["mae"], result.to_json()             # doctest: +SKIP
"""

from rag_pricer.evaluation.bootstrap import Bootstrap, Interval
from rag_pricer.evaluation.cache import ResultCache, run_key
from rag_pricer.evaluation.compare import Comparison, ComparisonResult, resolve_strategies
from rag_pricer.evaluation.metrics import METRICS
from rag_pricer.evaluation.results import EvaluationResult, ItemResult
from rag_pricer.evaluation.runner import Evaluation, LeakageError, check_leaks, schedule

__all__ = [
    "METRICS",
    "Bootstrap",
    "Comparison",
    "ComparisonResult",
    "Evaluation",
    "EvaluationResult",
    "Interval",
    "ItemResult",
    "LeakageError",
    "ResultCache",
    "check_leaks",
    "resolve_strategies",
    "run_key",
    "schedule",
]
