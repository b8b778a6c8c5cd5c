"""A feedback as a product of the knowledge base (``Settings.feedback_learns``): its description
and the price it really sold for, checked as ingestion checks any record."""

from __future__ import annotations

from rag_pricer.feedback.journal import Feedback
from rag_pricer.items import Item


def as_item(feedback: Feedback) -> Item:
    """The product ``feedback`` teaches: first line of its description as the title, the rest as
    text, the sold price; ``InvalidRecord`` when ingestion would refuse it (price out of range)."""
    title, _, text = (feedback.description or "").strip().partition("\n")
    return Item.from_record(
        {
            "id": f"feedback-{feedback.seq}",
            "title": title,
            "text": text,
            "price": feedback.sold,
            "split": "feedback",
            "source": f"feedback {feedback.estimate_id or 'unmatched'}",
        }
    )
