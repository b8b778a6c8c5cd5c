"""``/v1/products``: the products of the knowledge base."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag_pricer.service.dependencies import PricingDep
from rag_pricer.service.errors import ERRORS
from rag_pricer.service.schemas import ErrorResponse, ProductOut

router = APIRouter(tags=["products"])

ProductId = Annotated[str, Path(max_length=200, description="The product's id (a comparable's `id`).")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse, "description": "No product of that id."}}


@router.get(
    "/products/{product_id}",
    response_model=ProductOut,
    summary="One product of the knowledge base",
    description="The stored product `product_id` (the `id` of a comparable): title, price, category and its text.",
    responses={**NOT_FOUND, 503: ERRORS[503]},
)
async def product(product_id: ProductId, pricing: PricingDep) -> ProductOut:
    found = await pricing.product(product_id)
    if found is None:
        raise StarletteHTTPException(status.HTTP_404_NOT_FOUND, f"no product {product_id!r} in the knowledge base")
    return ProductOut(
        id=found.id,
        title=found.title,
        price=found.price,
        category=found.category,
        split=found.split,
        description=found.document,
    )
