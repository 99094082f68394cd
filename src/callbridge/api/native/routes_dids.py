"""Native routes: DIDs, the trunk numbers that route inbound calls to a tenant (#3)."""

from __future__ import annotations

from enum import Enum

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from ...domain.dids import Did
from .deps import ActorDep, ContainerDep

router = APIRouter()

_TAGS: list[str | Enum] = ["dids"]


class DidCreate(BaseModel):
    number: str = Field(
        min_length=1,
        max_length=40,
        description="As the carrier sends it; spaces, dashes, dots and parentheses are removed",
    )
    target: str = Field(description="An extension number or queue extension of the tenant")
    description: str = Field(default="", max_length=200)
    priority: int = Field(
        default=0, ge=0, le=9, description="(#4) queue priority of its callers, higher first"
    )


class DidPatch(BaseModel):
    target: str | None = None
    description: str | None = Field(default=None, max_length=200)
    priority: int | None = Field(default=None, ge=0, le=9)


@router.get("/tenants/{tenant_id}/dids", response_model=list[Did], tags=_TAGS)
async def list_dids(tenant_id: str, actor: ActorDep, c: ContainerDep) -> list[Did]:
    return c.dids.dids_of(actor, tenant_id)


@router.post(
    "/tenants/{tenant_id}/dids",
    response_model=Did,
    status_code=201,
    tags=_TAGS,
    summary="Assign a DID to the tenant (telco-level users only)",
)
async def create_did(tenant_id: str, body: DidCreate, actor: ActorDep, c: ContainerDep) -> Did:
    return await c.dids.create(
        actor, tenant_id, body.number, body.target, body.description, priority=body.priority
    )


@router.get("/tenants/{tenant_id}/dids/{did_id}", response_model=Did, tags=_TAGS)
async def get_did(tenant_id: str, did_id: str, actor: ActorDep, c: ContainerDep) -> Did:
    return c.dids.did(actor, tenant_id, did_id)


@router.patch(
    "/tenants/{tenant_id}/dids/{did_id}",
    response_model=Did,
    tags=_TAGS,
    summary="Re-point a DID to another extension or queue of the tenant",
)
async def patch_did(
    tenant_id: str, did_id: str, body: DidPatch, actor: ActorDep, c: ContainerDep
) -> Did:
    return await c.dids.update(actor, tenant_id, did_id, body.model_dump(exclude_none=True))


@router.delete(
    "/tenants/{tenant_id}/dids/{did_id}",
    status_code=204,
    tags=_TAGS,
    summary="Take a DID back from the tenant (telco-level users only)",
)
async def delete_did(tenant_id: str, did_id: str, actor: ActorDep, c: ContainerDep) -> Response:
    await c.dids.delete(actor, tenant_id, did_id)
    return Response(status_code=204)
