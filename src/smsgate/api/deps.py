"""The services `create_app` puts on app.state, typed, for endpoints and console pages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request

if TYPE_CHECKING:
    from smsgate.auth.service import AuthService
    from smsgate.management.fallbacks import FallbackService
    from smsgate.management.service import ConfigService
    from smsgate.pipeline.service import QueueService
    from smsgate.records.service import RecordService
    from smsgate.reports.service import ReportService
    from smsgate.sending.service import SendingService
    from smsgate.webhooks.service import WebhookService


def config_service(request: Request) -> ConfigService:
    service: ConfigService = request.app.state.config
    return service


def record_service(request: Request) -> RecordService:
    service: RecordService = request.app.state.records
    return service


def webhook_service(request: Request) -> WebhookService:
    service: WebhookService = request.app.state.webhooks
    return service


def auth_service(request: Request) -> AuthService:
    service: AuthService = request.app.state.auth
    return service


def fallback_service(request: Request) -> FallbackService:
    service: FallbackService = request.app.state.fallbacks
    return service


def report_service(request: Request) -> ReportService:
    service: ReportService = request.app.state.reports
    return service


def queue_service(request: Request) -> QueueService:
    service: QueueService = request.app.state.queue
    return service


def sending(request: Request) -> SendingService:
    service: SendingService = request.app.state.sending
    return service
