"""All of the authorization server's routes, to be included before the FHIR routes (the
discovery documents live under the FHIR base)."""

from __future__ import annotations

from fastapi import APIRouter

from facade.auth.server.authorize_flow import router as authorize_router
from facade.auth.server.registration import router as registration_router
from facade.auth.server.token_endpoints import router as token_router

router = APIRouter()
router.include_router(token_router)
router.include_router(registration_router)
router.include_router(authorize_router)
