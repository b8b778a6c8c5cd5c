"""The HTTP service's request and response bodies (pydantic), with the examples shown at ``/docs``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from rag_pricer.items import ITEM_ID_PATTERN, MAX_ID_CHARS
from rag_pricer.pricing.values import Confidence, Estimate
from rag_pricer.query import has_visible_text

#: longer descriptions are refused (422); those between ``Settings.max_description_chars`` and
#: this are accepted and truncated by the pricer, with a note saying so
MAX_DESCRIPTION_CHARS = 20_000
MAX_CATEGORY_CHARS = 100
#: a batch body holding more items is refused (422) while it is read, whatever the server's
#: ``max_batch_items`` (413 above it): 100,000 items then cost one error, not 100,000
MAX_BATCH_ITEMS_CEILING = 1024

EXAMPLE_DESCRIPTION = (
    "Delphi FG0166 Fuel Pump Module\n"
    "Replacement fuel pump module for 2003-2006 Chevrolet Silverado and GMC Sierra pickups; "
    "OE-quality pump, sender and reservoir assembly."
)


class EstimateRequest(BaseModel):
    """One description to price."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"description": EXAMPLE_DESCRIPTION, "strategy": "knn", "k": 5},
                {"description": EXAMPLE_DESCRIPTION, "strategy": "rag", "llm": "local"},
                {"description": EXAMPLE_DESCRIPTION, "strategy": "knn", "options": {"power": 2, "mmr": True}},
            ]
        },
    )

    description: str = Field(
        ...,
        max_length=MAX_DESCRIPTION_CHARS,
        # documented, checked by ``_not_blank`` (which says "the description is empty", after stripping)
        json_schema_extra={"minLength": 1},
        description=(
            "The product's title and description (plain text). Leading/trailing blanks are ignored; a description "
            "with no visible character (blanks, control or zero-width characters only) is empty (422)."
        ),
    )
    strategy: str | None = Field(
        None, max_length=64, description="Pricing strategy (see `GET /v1/strategies`); default: the server's."
    )
    # strict: a JSON integer only, so true, 2.0 or "5" are type errors rather than silently coerced
    k: int | None = Field(
        None, ge=1, le=100, strict=True, description="Comparable products to retrieve; default: the server's."
    )
    category: str | None = Field(
        None, max_length=MAX_CATEGORY_CHARS, description="Retrieve only products of this Amazon category."
    )

    llm: str | None = Field(
        None,
        max_length=64,
        description=(
            "LLM backend of the LLM strategies (`rag`, `zero-shot`), by name (see `GET /v1/llms`); default: the "
            "server's. A name only: the model, file or endpoint behind it are the server's settings."
        ),
    )

    options: dict[str, bool | int | float | str | None] | None = Field(
        None,
        max_length=32,
        description=(
            "The strategy's other options by name, as `GET /v1/strategies` lists them, e.g. "
            '`{"power": 2, "mean": "geometric", "mmr": true}` for knn. An option the strategy lacks, or a bad '
            "value, is refused (422). `k`, `category` and `llm` may be given here or at the top level, not both."
        ),
    )

    @field_validator("llm")
    @classmethod
    def _known_backend(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        # A client names a backend; it never points the server at a file or a URL (``local:/path``,
        # ``openai-compatible:MODEL@URL``): those stay in the server's settings.
        from rag_pricer.llms.registry import backend_registry

        known = backend_registry.names()
        if value not in known:
            raise ValueError(f"unknown LLM backend {value!r}; known: {', '.join(known)} (a name, without ':argument')")
        return value

    @field_validator("description")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("the description is empty")
        if not has_visible_text(value):
            raise ValueError("the description is empty: it has no visible text")
        return value

    @field_validator("strategy", "category")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        # An empty select in a form sends "": treat it as "use the default".
        if value is None:
            return None
        return value.strip() or None


class BatchRequest(BaseModel):
    """Several descriptions to price in one call (at most the server's ``max_batch_items``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"description": EXAMPLE_DESCRIPTION},
                        {"description": "Fender Player Stratocaster electric guitar, maple fingerboard", "k": 8},
                    ]
                }
            ]
        },
    )

    items: list[EstimateRequest] = Field(
        ...,
        min_length=1,
        max_length=MAX_BATCH_ITEMS_CEILING,
        description="The descriptions, priced in order (at most the server's `max_batch_items`: 413 above).",
    )


class ComparableOut(BaseModel):
    """A stored product used as evidence."""

    id: str | None = Field(None, description="Id of the stored product.")
    title: str
    price: float = Field(..., description="Its price in USD.")
    similarity: float = Field(..., description="Cosine similarity to the description (1 = identical).")
    category: str | None = None


class UsageOut(BaseModel):
    """Tokens and cost of the LLM calls behind an estimate."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cached: bool = False


class EstimateResponse(BaseModel):
    """A price in USD with the evidence behind it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "5b0e7c1d9a3f4e26b8c4d1f07a9e3b52",
                    "price": 186.42,
                    "strategy": "knn",
                    "comparables": [
                        {
                            "id": "3f1c9a7e5b2d4c60",
                            "title": "ACDelco MU1779 Fuel Pump and Level Sensor Module",
                            "price": 179.99,
                            "similarity": 0.8123,
                            "category": "Automotive",
                        }
                    ],
                    "fallback": False,
                    "fallback_reason": None,
                    "llm_answer": None,
                    "latency_ms": 21.7,
                    "notes": [],
                    "usage": None,
                    "low": 121.3,
                    "high": 402.75,
                    "coverage": 0.8,
                    "confidence": "medium",
                    "confidence_reason": "the closest product we know is 81% similar: a rough estimate",
                }
            ]
        }
    )

    id: str = Field(
        ..., description="Names this estimate: send it with the price the product sold for (`POST /v1/feedback`)."
    )
    price: float = Field(..., description="The estimated price in USD, rounded to cents.")
    strategy: str = Field(..., description="The strategy that was asked for.")
    comparables: list[ComparableOut] = Field(default_factory=list, description="Most similar first.")
    fallback: bool = Field(
        False, description="True when the requested strategy could not price it and the knn estimate was used."
    )
    fallback_reason: str | None = Field(None, description="Why the fallback was used.")
    llm_answer: str | None = Field(None, description="The LLM's raw answer, for LLM strategies.")
    latency_ms: float = Field(..., description="Time spent pricing on the server, in milliseconds.")
    notes: list[str] = Field(default_factory=list, description="Remarks, e.g. that the description was truncated.")
    usage: UsageOut | None = Field(None, description="LLM token usage, for LLM strategies.")
    low: float | None = Field(None, description="Low end of the price range (null: the strategy is not calibrated).")
    high: float | None = Field(None, description="High end of the price range (null: the strategy is not calibrated).")
    coverage: float | None = Field(
        None, description="Share of true prices the range held on held-out items when calibrated (e.g. 0.8)."
    )
    confidence: Confidence | None = Field(
        None,
        description=(
            "How far to trust the price, from the comparables: `high` (close products agree on a price), `medium`, "
            "or `low` (the store knows nothing like it: treat the price as a guess). Null when the strategy shows "
            "no comparables."
        ),
    )
    confidence_reason: str | None = Field(None, description="Why that confidence level, in words.")

    @classmethod
    def of(cls, estimate: Estimate, strategy: str, latency_s: float) -> EstimateResponse:
        """The response for ``estimate``, priced for a request of ``strategy`` in ``latency_s``."""
        usage = estimate.usage
        return cls(
            id=estimate.id,
            price=round(estimate.price, 2),
            strategy=strategy,
            comparables=[
                ComparableOut(
                    id=c.id, title=c.title, price=c.price, similarity=round(c.similarity, 4), category=c.category
                )
                for c in estimate.comparables
            ],
            fallback=estimate.fallback is not None,
            fallback_reason=estimate.fallback,
            llm_answer=estimate.llm_answer,
            latency_ms=round(latency_s * 1000, 2),
            notes=list(estimate.notes),
            usage=None if usage is None else UsageOut(**vars(usage)),
            low=None if estimate.low is None else round(estimate.low, 2),
            high=None if estimate.high is None else round(estimate.high, 2),
            coverage=estimate.coverage,
            confidence=estimate.confidence,
            confidence_reason=estimate.confidence_reason,
        )


class BatchResponse(BaseModel):
    """The estimates of a batch, in the order of its items."""

    items: list[EstimateResponse]
    count: int
    latency_ms: float = Field(..., description="Time spent on the whole batch, in milliseconds.")


class OptionOut(BaseModel):
    name: str
    type: str = Field(..., description="Its type as text: int, str | None, arithmetic | geometric, ...")
    default: Any = Field(None, description="Its value when not given.")
    description: str = ""


StrategyStatus = Literal["ready", "needs-training", "needs-llm", "needs-store", "needs-extra", "needs-gpu"]


class StrategyOut(BaseModel):
    name: str
    summary: str
    needs: list[str] = Field(..., description="What it needs: store, llm, trained, gpu.")
    options: list[OptionOut] = Field(..., description="The options it accepts; any other is refused (422).")
    status: StrategyStatus = Field(..., description="`ready`, or what it needs first on this server.")
    ready: bool = Field(..., description="Whether it can price here now (else its estimates are refused: 409).")
    hint: str | None = Field(None, description="What to run or set to make it ready (one line); null when ready.")
    detail: str | None = Field(None, description="What is missing, e.g. the model folder that holds no trained model.")
    llm: str | None = Field(None, description="The LLM spec it uses (LLM strategies only).")
    llm_checked: bool = Field(
        False,
        description="True when that LLM answered a question (`?check=true`); else only its files and key were seen.",
    )
    dev_mae: float | None = Field(
        None, description="Its mean absolute error in USD on the dev split, as last measured; null: none on record."
    )
    dev_hit_rate: float | None = Field(
        None, description="Its share of dev estimates within $40 or 20% of the truth; null: none on record."
    )
    recommended: bool = Field(
        False, description="The ready strategy with the lowest dev MAE on record (else the server's default)."
    )


class LLMOut(BaseModel):
    name: str = Field(..., description="The backend's name, as sent in `llm`.")
    summary: str
    default: bool = Field(..., description="Whether it is the server's default backend.")


class LLMsResponse(BaseModel):
    """The LLM backends the LLM strategies can use (`llm` in an estimate request)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "default": "local",
                    "llms": [{"name": "local", "summary": "SmolLM2-135M-Instruct in process.", "default": True}],
                }
            ]
        }
    )

    default: str = Field(..., description="The backend used when a request names none.")
    llms: list[LLMOut]


class ProductOut(BaseModel):
    """A product of the knowledge base, as stored."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3f1c9a7e5b2d4c60",
                    "title": "ACDelco MU1779 Fuel Pump and Level Sensor Module",
                    "price": 179.99,
                    "category": "Automotive",
                    "split": "train",
                    "description": "ACDelco MU1779 Fuel Pump and Level Sensor Module\nGM original equipment ...",
                }
            ]
        }
    )

    id: str
    title: str
    price: float = Field(..., description="Its price in USD.")
    category: str | None = None
    split: str | None = Field(None, description="The dataset split it came from.")
    description: str = Field(..., description="The stored text: title and description, as embedded.")


class StrategiesResponse(BaseModel):
    """The registered strategies, the server's default and its fallback."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "default": "knn",
                    "fallback": "knn",
                    "strategies": [
                        {
                            "name": "knn",
                            "summary": "Similarity-weighted price of the k nearest stored products (no LLM).",
                            "needs": ["store"],
                            "options": [
                                {"name": "k", "type": "int", "default": 7, "description": "Comparables to retrieve."}
                            ],
                            "status": "ready",
                            "ready": True,
                            "hint": None,
                            "detail": None,
                            "llm": None,
                            "llm_checked": False,
                            "dev_mae": 106.26,
                            "dev_hit_rate": 0.37,
                            "recommended": True,
                        },
                        {
                            "name": "bow",
                            "summary": "Course baseline: counts of 1,000 words, linear regression.",
                            "needs": ["trained"],
                            "options": [],
                            "status": "needs-training",
                            "ready": False,
                            "hint": "rag-pricer train-baselines --items data/items.jsonl.gz --split train --only bow",
                            "detail": "no trained model in var/models/bow",
                            "llm": None,
                            "llm_checked": False,
                            "dev_mae": None,
                            "dev_hit_rate": None,
                            "recommended": False,
                        },
                    ],
                }
            ]
        }
    )

    default: str
    fallback: str
    strategies: list[StrategyOut]


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    auth_required: bool = Field(..., description="Whether /v1/* need `Authorization: Bearer <token>`.")


class ReadyResponse(BaseModel):
    ready: bool
    status: Literal["starting", "ready", "failed"]
    store_items: int | None = Field(None, description="Products in the knowledge base, once loaded.")
    embedding_model: str
    default_strategy: str
    detail: str | None = Field(None, description="Why the service is not ready.")


class ErrorResponse(BaseModel):
    """Every error has this shape."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": "invalid_request",
                    "message": "body.description: the description is empty",
                    "details": [{"loc": ["body", "description"], "msg": "the description is empty"}],
                }
            ]
        }
    )

    error: str = Field(..., description="A short code: invalid_request, unknown_strategy, unauthorized, ...")
    message: str = Field(..., description="What went wrong, for a human.")
    details: list[dict[str, Any]] | None = None


MAX_PRODUCT_ID_CHARS = MAX_ID_CHARS
#: a product id as the API takes it: the format ingestion enforces (``rag_pricer.items.ITEM_ID_PATTERN``)
ProductIdStr = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS, pattern=ITEM_ID_PATTERN)]
#: products one batch write may hold (its body is bounded too: 1 MiB)
MAX_WRITE_ITEMS = 256


class ProductIn(BaseModel):
    """A product to store, in the curated items format. It is checked exactly as ingestion
    checks a record (price within the items' range, title present; title and text cut at a word
    past their limits), then embedded and stored: estimates retrieve it within seconds."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "Delphi FG0166 Fuel Pump Module",
                    "text": "Replacement fuel pump module for 2003-2006 Chevrolet Silverado pickups.",
                    "price": 189.99,
                    "category": "Automotive",
                }
            ]
        },
    )

    title: str = Field(..., max_length=2_000, description="The product's title (cut at a word past 500 characters).")
    text: str = Field("", max_length=20_000, description="Its description (cut at a word past 4,000 characters).")
    # Any: checked by ingestion's own rules (``Item.from_record``), which refuse a price given as
    # text ("12.50") with ``bad_price`` instead of coercing it; the schema says what passes
    price: Any = Field(
        ...,
        json_schema_extra={"type": "number"},
        description="Its price in USD, a JSON number within the items' range ($0.50 to $999.49); text is refused.",
    )
    category: str | None = Field(None, max_length=MAX_CATEGORY_CHARS, description="Its Amazon category.")
    split: str | None = Field(None, max_length=64, description="Dataset split, if any (e.g. `live`).")
    source: str | None = Field(None, max_length=200, description="Where it came from.")

    def record(self, product_id: str) -> dict[str, Any]:
        """The curated-format record of this product under ``product_id``."""
        return {"id": product_id, **self.model_dump()}


class ProductRecordIn(ProductIn):
    """A product to store, with its id (batch writes)."""

    id: ProductIdStr = Field(..., description="The product's id: letters, digits and `._:-`, no `..`.")


class ProductsWriteRequest(BaseModel):
    """Products to store or replace and ids to delete, checked first and written together:
    one bad record refuses the whole request (422, one detail per bad record)."""

    model_config = ConfigDict(extra="forbid")

    upsert: list[ProductRecordIn] = Field(default_factory=list, max_length=MAX_WRITE_ITEMS)
    delete: list[ProductIdStr] = Field(default_factory=list, max_length=MAX_WRITE_ITEMS, description="Ids to delete.")


class ProductsWritten(BaseModel):
    """What a write did."""

    upserted: list[str] = Field(default_factory=list, description="Ids stored or replaced.")
    deleted: list[str] = Field(default_factory=list, description="Ids deleted.")
    missing: list[str] = Field(default_factory=list, description="Ids to delete that were not stored.")
    store_items: int = Field(..., description="Products in the knowledge base after the write.")
