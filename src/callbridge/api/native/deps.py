"""Request dependencies: the container and the authenticated actor."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ...bootstrap import Container
from ...service.auth import Actor

bearer = HTTPBearer(
    auto_error=False, description="A callbridge API token (`callbridge tokens create`)"
)


async def container(request: Request) -> Container:
    c: Container = request.app.state.container
    return c


async def actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Actor:
    c: Container = request.app.state.container
    return c.directory.authenticate(credentials.credentials if credentials else None)


ContainerDep = Annotated[Container, Depends(container)]
ActorDep = Annotated[Actor, Depends(actor)]
