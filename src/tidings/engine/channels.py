"""Channel steps: render the content, then write the in-app message or send through the channel's integration."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from typing import Any

import jinja2

from tidings.core.channels import Channel
from tidings.core.clock import utcnow
from tidings.engine.context import StepContext
from tidings.engine.delivery import DeliveryError, FailureKind, OutboundMessage, recipient_of
from tidings.engine.metrics import record_delivery, record_provider_error, record_send
from tidings.engine.outcome import Outcome, completed, failed
from tidings.inbox.documents import Action
from tidings.inbox.service import NewMessage, deliver_in_app
from tidings.integrations.documents import Integration, in_failover_order
from tidings.notifications.documents import Job, JobStatus
from tidings.rendering.environment import TemplateError, compile_template
from tidings.rendering.render import RenderError, render_async, text_from_html
from tidings.subscribers.documents import Subscriber
from tidings.webhooks.events import WebhookEventType
from tidings.webhooks.service import emit
from tidings.workflows.steps import ChatStep, EmailStep, InAppStep, PushStep, SmsStep


@lru_cache(maxsize=1024)
def _compiled(source: str, html: bool) -> jinja2.Template:
    """Workflows were compiled at save time already; cache so each send doesn't parse its templates again."""
    return compile_template(source, max_bytes=len(source.encode()) + 1, autoescape=html)


class _Renderer:
    """Renders the fields of one step against one context, remembering every missing variable."""

    def __init__(self, ctx: StepContext) -> None:
        self.data = ctx.data()
        self.policy = ctx.deps.policy
        self.missing: set[str] = set()

    async def __call__(self, source: str | None, *, html: bool = False) -> str | None:
        if source is None:
            return None
        template = _compiled(source, html)
        rendered = await render_async(
            template,
            self.data,
            max_bytes=self.policy.render_max_bytes,
            timeout_seconds=self.policy.render_timeout_seconds,
        )
        self.missing.update(rendered.missing)
        return rendered.text


async def _action(render: _Renderer, action: Any) -> Action | None:
    if action is None:
        return None
    return Action(label=await render(action.label) or "", url=_safe_rendered_url(await render(action.url)))


async def run_in_app(ctx: StepContext, step: InAppStep) -> Outcome:
    render = _Renderer(ctx)
    try:
        new = NewMessage(
            environment_id=ctx.job.environment_id,
            subscriber_id=ctx.job.subscriber_id,
            notification_id=ctx.job.notification_id,
            transaction_id=ctx.job.transaction_id,
            workflow_id=ctx.job.workflow_id,
            step_id=ctx.job.step_id,
            subject=await render(step.subject),
            body=await render(step.body) or "",
            avatar=_safe_rendered_url(await render(step.avatar)),
            redirect_url=_safe_rendered_url(await render(step.redirect_url)),
            primary_action=await _action(render, step.primary_action),
            secondary_action=await _action(render, step.secondary_action),
            data=step.data,
            tags=ctx.trigger.workflow.tags,
        )
    except (TemplateError, RenderError) as exc:
        return failed(f"template error: {exc}")
    message, created = await deliver_in_app(new, ctx.deps.publisher)
    if created:  # a redelivered job finds its message stored already: that delivery was counted then
        record_delivery(Channel.IN_APP, ctx.trigger.created_at, utcnow())
    return completed({"messageId": str(message.id)}, created=created, missing_variables=sorted(render.missing))


def _safe_rendered_url(url: str | None) -> str | None:
    """A template may render to anything: keep http(s) and app paths only (Novu GHSA-8gr3-5j6f-25gp). `//host` and
    `/\\host` are other sites to a browser, and any backslash or control character is refused outright."""
    if url is None:
        return None
    if any(ch == "\\" or ord(ch) < 0x20 for ch in url):
        return None
    if url.startswith(("https://", "http://")) or (url.startswith("/") and not url.startswith("//")):
        return url
    return None


async def _content(ctx: StepContext, step: Any, render: _Renderer) -> dict[str, Any]:
    match step:
        case EmailStep():
            html = await render(step.body, html=True) or ""
            return {"subject": await render(step.subject) or "", "html": html, "text": text_from_html(html)}
        case SmsStep() | ChatStep():
            return {"body": await render(step.body) or ""}
        case PushStep():
            return {
                "title": await render(step.title) or "",
                "body": await render(step.body) or "",
                "data": step.data or {},
            }
    raise AssertionError(step)


def _disabled_address(subscriber: Subscriber, channel: Channel) -> str | None:
    """A provider reported this address dead (status callbacks): don't send to it again until it changes."""
    email, bounced = subscriber.email, subscriber.bounced_email
    if channel is Channel.EMAIL and email and bounced and email.casefold() == bounced.casefold():
        return "the subscriber's email address bounced; it is used again once it changes"
    if channel is Channel.SMS and subscriber.phone and subscriber.phone == subscriber.undeliverable_phone:
        return "the subscriber's phone number is undeliverable; it is used again once it changes"
    return None


async def _integrations(ctx: StepContext, channel: Channel) -> list[Integration]:
    rows = await Integration.find(
        {"environment_id": ctx.job.environment_id, "channel": channel, "active": True}
    ).to_list()
    return in_failover_order(rows)


async def _drop_bad_tokens(ctx: StepContext, integration: Integration, detail: dict[str, Any]) -> None:
    """A push service said these device tokens are dead: remove them from the subscriber (and keep them out of the
    stored detail)."""
    tokens = detail.pop("badDeviceTokens", None)
    if not tokens:
        return
    await Subscriber.get_pymongo_collection().update_one(
        {
            "environment_id": ctx.job.environment_id,
            "subscriber_id": ctx.job.subscriber_id,
            "push.integration_identifier": integration.identifier,
        },
        {"$pull": {"push.$.device_tokens": {"$in": list(tokens)}}},
    )
    detail["removedDeviceTokens"] = len(tokens)


async def run_provider_channel(ctx: StepContext, step: EmailStep | SmsStep | PushStep | ChatStep) -> Outcome:
    channel = step.channel
    assert channel is not None
    if ctx.job.sent_message_id is not None:
        # The send happened in an earlier run that died before recording its outcome: never send twice.
        return completed({"messageId": ctx.job.sent_message_id}, resumed_after_send=True)
    integrations = await _integrations(ctx, channel)
    refusal = _disabled_address(ctx.subscriber, channel)
    if not integrations:
        refusal = f"no active integration for the {channel.value} channel"
    if refusal is not None:
        return failed(refusal)
    render = _Renderer(ctx)
    try:
        content = await _content(ctx, step, render)
    except (TemplateError, RenderError) as exc:
        return failed(f"template error: {exc}")
    message = OutboundMessage(
        channel=channel,
        recipient=recipient_of(ctx.subscriber),
        content=content,
        idempotency_key=str(ctx.job.id),
        metadata={
            "transactionId": ctx.job.transaction_id,
            "workflowId": ctx.job.workflow_id,
            "stepId": ctx.job.step_id,
            "subscriberId": ctx.job.subscriber_id,
        },
    )
    # Failover: a transient failure or an open circuit moves the send to the next integration; a permanent
    # failure or a bad endpoint does not (the next provider would refuse the same content or address).
    attempts: list[dict[str, Any]] = []
    last_error: DeliveryError | None = None
    breaker = ctx.deps.breaker
    for integration in integrations:
        base = {"integration": integration.identifier, "provider": integration.provider_id}
        if not await breaker.allow(str(integration.id)):
            attempts.append({**base, "outcome": "skipped", "reason": "circuit open"})
            continue
        try:
            result = await ctx.deps.sender.send(integration, message)
        except DeliveryError as exc:
            record_provider_error(integration.provider_id, exc.kind)
            await breaker.record(str(integration.id), healthy=exc.kind is not FailureKind.TRANSIENT)
            await _drop_bad_tokens(ctx, integration, exc.detail)
            attempts.append({**base, "outcome": "failed", "kind": exc.kind.value, "error": exc.message})
            if exc.kind is FailureKind.TRANSIENT:
                last_error = exc
                continue
            await _announce(ctx, WebhookEventType.MESSAGE_FAILED, integration, kind=exc.kind.value, error=exc.message)
            return after_failure(ctx, exc, {**base, "attempts": attempts})
        await breaker.record(str(integration.id), healthy=True)
        record_send(integration.provider_id)
        record_delivery(channel, ctx.trigger.created_at, utcnow())
        detail = dict(result.detail)
        await _drop_bad_tokens(ctx, integration, detail)
        await _record_send(ctx.job, result.provider_message_id or "sent")
        attempts.append({**base, "outcome": "sent"})
        await _announce(ctx, WebhookEventType.MESSAGE_SENT, integration, messageId=result.provider_message_id)
        return completed(
            {"messageId": result.provider_message_id},
            **base,
            **detail,
            attempts=attempts,
            missing_variables=sorted(render.missing),
        )
    if last_error is None:
        last_error = DeliveryError(f"every {channel.value} integration has an open circuit", kind=FailureKind.TRANSIENT)
    return after_failure(ctx, last_error, {"attempts": attempts})


async def _announce(ctx: StepContext, event: WebhookEventType, integration: Integration, **data: Any) -> None:
    """Tell the environment's webhook endpoints (outbound webhooks); `emit` leaves deliveries it could not queue to
    the scheduler's sweep, so a queue outage never fails the step."""
    job = ctx.job
    payload = {
        "transactionId": job.transaction_id,
        "workflowId": job.workflow_id,
        "stepId": job.step_id,
        "channel": job.step_type,
        "subscriberId": job.subscriber_id,
        "integration": integration.identifier,
        "provider": integration.provider_id,
        **data,
    }
    await emit(job.environment_id, event.value, payload, ctx.deps.queue)


async def _record_send(job: Job, message_id: str) -> None:
    """Store the provider's id at once: the window in which a crash could lead to a second send stays tiny."""
    await Job.get_pymongo_collection().update_one({"_id": job.id}, {"$set": {"sent_message_id": message_id}})


def after_failure(ctx: StepContext, error: DeliveryError, base: dict[str, Any]) -> Outcome:
    """Transient failures retry with backoff until `max_attempts`; the others fail the step at once."""
    detail = {**base, "error": error.message, "kind": error.kind.value, **error.detail}
    policy = ctx.deps.policy
    attempt = ctx.job.attempts
    if error.kind is FailureKind.TRANSIENT and attempt < policy.max_attempts:
        delay = policy.retry_delay(attempt, error.retry_after)
        reason = f"transient failure, attempt {attempt + 1} of {policy.max_attempts} in {delay:.1f}s: {error.message}"
        return Outcome(JobStatus.DELAYED, reason=reason, due_at=ctx.now + timedelta(seconds=delay), detail=detail)
    prefix = "gave up after retries" if error.kind is FailureKind.TRANSIENT else error.kind.value.replace("_", " ")
    return Outcome(JobStatus.FAILED, reason=f"{prefix}: {error.message}", detail=detail)
