"""Native routes: API users (principals) and their bearer tokens."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ...domain.tenancy import ApiToken, Level, Principal
from .deps import ActorDep, ContainerDep

router = APIRouter(tags=["access"])


class PrincipalCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    level: Level = Level.TENANT
    tenant_id: str | None = None
    extension_id: str | None = Field(default=None, description="Set for an agent acting as itself")
    role_ids: list[str] = Field(default_factory=list)


class TokenCreate(BaseModel):
    name: str = ""


class TokenView(BaseModel):
    id: str
    principal_id: str
    name: str
    created_at: datetime
    revoked: bool

    @classmethod
    def of(cls, token: ApiToken) -> TokenView:
        return cls(
            id=token.id,
            principal_id=token.principal_id,
            name=token.name,
            created_at=token.created_at,
            revoked=token.revoked,
        )


class IssuedToken(TokenView):
    token: str = Field(description="The secret: shown once, stored only as a hash")


@router.get("/principals", response_model=list[Principal])
async def list_principals(actor: ActorDep, c: ContainerDep) -> list[Principal]:
    return c.access.principals(actor)


@router.post("/principals", response_model=Principal, status_code=201)
async def create_principal(body: PrincipalCreate, actor: ActorDep, c: ContainerDep) -> Principal:
    return await c.access.create_principal(
        actor, body.name, body.level, body.role_ids, body.tenant_id, body.extension_id
    )


@router.get("/principals/{principal_id}/tokens", response_model=list[TokenView])
async def list_tokens(principal_id: str, actor: ActorDep, c: ContainerDep) -> list[TokenView]:
    return [TokenView.of(t) for t in c.access.tokens(actor, principal_id)]


@router.post("/principals/{principal_id}/tokens", response_model=IssuedToken, status_code=201)
async def issue_token(
    principal_id: str, body: TokenCreate, actor: ActorDep, c: ContainerDep
) -> IssuedToken:
    token, secret = await c.access.issue_token(actor, principal_id, body.name)
    return IssuedToken(**TokenView.of(token).model_dump(), token=secret)


@router.post("/tokens/{token_id}/revoke", response_model=TokenView)
async def revoke_token(token_id: str, actor: ActorDep, c: ContainerDep) -> TokenView:
    return TokenView.of(await c.access.revoke_token(actor, token_id))
