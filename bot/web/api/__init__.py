"""REST API under /api/v1, for bearer tokens made with `tierdesk tokens create`."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from bot.web.api import customers, reports, tickets
from bot.web.api.deps import require_token

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)])
router.include_router(customers.router)
router.include_router(tickets.router)
router.include_router(reports.router)
