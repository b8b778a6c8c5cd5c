"""The bodies of ``POST /v1/feedback`` and ``GET /v1/monitor`` (pydantic)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rag_pricer.service.schemas import MAX_DESCRIPTION_CHARS

#: a sold price above this is a typo (the items run to $999; the service prices up to $10,000)
MAX_SOLD_PRICE = 100_000.0


class FeedbackRequest(BaseModel):
    """The price a product really sold for, naming the estimate it answers (its `id`), or else
    the description that was priced (the latest estimate of that exact text is scored)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"estimate_id": "5b0e7c1d9a3f4e26b8c4d1f07a9e3b52", "price": 179.0},
                {"description": "Delphi FG0166 Fuel Pump Module", "price": 179.0},
            ]
        },
    )

    estimate_id: str | None = Field(
        None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="The `id` of an estimate."
    )
    description: str | None = Field(
        None, max_length=MAX_DESCRIPTION_CHARS, description="The description priced (when the id is not known)."
    )
    price: float = Field(
        ..., gt=0, le=MAX_SOLD_PRICE, allow_inf_nan=False, description="The price it really sold for, in USD."
    )

    @model_validator(mode="after")
    def _names_an_estimate(self) -> FeedbackRequest:
        if self.description is not None:
            self.description = self.description.strip() or None
        if self.estimate_id is None and self.description is None:
            raise ValueError("name the estimate: `estimate_id` (an estimate's `id`) or its `description`")
        return self


class FeedbackResponse(BaseModel):
    """What was stored (on disk before this answer: a crash loses nothing acknowledged)."""

    seq: int = Field(..., description="The feedback's number in the journal.")
    estimate_id: str | None = Field(None, description="The estimate it answers (null: no estimate matched).")
    strategy: str | None = Field(None, description="That estimate's strategy.")
    estimated: float | None = Field(None, description="That estimate's price.")
    error: float | None = Field(None, description="estimated - sold price, in USD.")
    matched: bool = Field(..., description="Whether an estimate was found (only matched feedback is scored).")
    product_id: str | None = Field(
        None, description="The product it became in the knowledge base (servers with `feedback_learns` on)."
    )


class ScoresOut(BaseModel):
    n: int = Field(..., description="Feedbacks scored.")
    mae: float | None = Field(None, description="Mean absolute error, USD.")
    hit_rate: float | None = Field(None, description="Share off by less than $40 or 20%.")
    bias: float | None = Field(None, description="Mean (estimate - sold), USD: negative = priced too low.")
    ranged: int = Field(0, description="Feedbacks whose estimate had a range.")
    coverage: float | None = Field(None, description="Share of those whose range held the sold price.")
    promised: float | None = Field(None, description="The coverage the ranges promised.")
    p_value: float | None = Field(
        None, description="One-sided binomial P(a coverage this low | the promised one); < 0.05 warns."
    )
    warning: str | None = None


class StrategyScoresOut(BaseModel):
    strategy: str
    latest: ScoresOut = Field(..., description="Over the latest `window` feedbacks of this strategy.")
    total: ScoresOut = Field(..., description="Over all its feedbacks.")


class MonitorResponse(BaseModel):
    """How the estimates fared against the prices products sold for, per strategy."""

    window: int
    strategies: list[StrategyScoresOut]
    unmatched: int = Field(..., description="Feedbacks whose description matched no estimate (kept, not scored).")
    warnings: list[str] = Field(..., description="Ranges that held the sold price clearly less often than promised.")
