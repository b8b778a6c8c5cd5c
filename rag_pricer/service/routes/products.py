"""``/v1/products``: the products of the knowledge base, read by any reader, written (added,
replaced, deleted) only with the write token."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, status
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag_pricer.items import ITEM_ID_PATTERN, InvalidRecord, Item
from rag_pricer.service.dependencies import PricingDep, require_writer
from rag_pricer.service.errors import ERRORS, ProductsRefused
from rag_pricer.service.schemas import (
    MAX_PRODUCT_ID_CHARS,
    ErrorResponse,
    ProductIn,
    ProductOut,
    ProductsWriteRequest,
    ProductsWritten,
)

router = APIRouter(tags=["products"])
#: the write routes: their own token (``write_token``), never the read token
writes = APIRouter(tags=["products"], dependencies=[Depends(require_writer)])

ProductId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_PRODUCT_ID_CHARS,
        pattern=ITEM_ID_PATTERN,
        description="The product's id (a comparable's `id`): letters, digits and `._:-`, no `..` (else 422).",
    ),
]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse, "description": "No product of that id."}}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    401: ERRORS[401],
    403: {"model": ErrorResponse, "description": "Writes are disabled: the server has no write token."},
    413: ERRORS[413],
    422: {"model": ErrorResponse, "description": "A record ingestion would refuse; one detail per bad record."},
    503: ERRORS[503],
}


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


@writes.put(
    "/products/{product_id}",
    response_model=ProductsWritten,
    summary="Add or replace one product",
    description=(
        "Stores `product_id` (replacing any product of that id), checked as ingestion checks a record. "
        "Estimates retrieve it from the next request on. Needs `Authorization: Bearer <write token>`."
    ),
    responses=WRITE_ERRORS,
)
async def put_product(product_id: ProductId, body: ProductIn, pricing: PricingDep) -> ProductsWritten:
    items = checked([body.record(product_id)])
    return await pricing.write(items, [])


@writes.delete(
    "/products/{product_id}",
    response_model=ProductsWritten,
    summary="Delete one product",
    description="Estimates stop retrieving it from the next request on. Needs the write token.",
    responses={**WRITE_ERRORS, **NOT_FOUND},
)
async def delete_product(product_id: ProductId, pricing: PricingDep) -> ProductsWritten:
    written = await pricing.write([], [product_id])
    if written.missing:
        raise StarletteHTTPException(status.HTTP_404_NOT_FOUND, f"no product {product_id!r} in the knowledge base")
    return written


@writes.post(
    "/products/batch",
    response_model=ProductsWritten,
    summary="Add, replace and delete several products",
    description=(
        "`upsert` products (with their ids) and `delete` ids in one request, every record checked first: one "
        "bad record refuses the whole request (422, a detail per bad record) and nothing is written. "
        "Needs the write token."
    ),
    responses=WRITE_ERRORS,
)
async def write_products(body: ProductsWriteRequest, pricing: PricingDep) -> ProductsWritten:
    both = set(body.delete) & {record.id for record in body.upsert}
    if both:
        raise ProductsRefused([{"id": i, "reason": "both_upserted_and_deleted"} for i in sorted(both)])
    items = checked([record.record(record.id) for record in body.upsert])
    return await pricing.write(items, list(dict.fromkeys(body.delete)))


def checked(records: list[dict[str, Any]]) -> list[Item]:
    """``records`` as items, validated by ingestion's own ``Item.from_record``; ``ProductsRefused``
    (422) lists every bad record with its reason, and a repeated id."""
    items: list[Item] = []
    problems: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, record in enumerate(records):
        try:
            item = Item.from_record(record)
        except InvalidRecord as error:
            problems.append({"index": index, "id": record.get("id"), "reason": error.reason, "detail": error.detail})
            continue
        if item.id in seen:
            problems.append({"index": index, "id": item.id, "reason": "duplicate_id", "detail": ""})
        seen.add(item.id)
        items.append(item)
    if problems:
        raise ProductsRefused(problems)
    return items
