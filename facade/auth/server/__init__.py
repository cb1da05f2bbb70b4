"""facade's SMART App Launch 2.2 authorization server: authlib grants behind our own
Starlette adapter, server-rendered login/consent pages, client and user registries."""

from facade.auth.server.authority import (
    Authority,
    NoDirectory,
    PatientChoice,
    PatientDirectory,
    build_authority,
)
from facade.auth.server.router import router

__all__ = [
    "Authority",
    "NoDirectory",
    "PatientChoice",
    "PatientDirectory",
    "build_authority",
    "router",
]
