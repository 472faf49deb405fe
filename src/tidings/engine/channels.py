"""Channel steps: render the content, then write the in-app message or send through the channel's integration."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from typing import Any

import jinja2

from tidings.core.channels import Channel
from tidings.engine.context import StepContext
from tidings.engine.delivery import DeliveryError, FailureKind, OutboundMessage, Recipient
from tidings.engine.outcome import Outcome, completed, failed
from tidings.inbox.documents import Action
from tidings.inbox.service import NewMessage, deliver_in_app
from tidings.integrations.documents import Integration
from tidings.notifications.documents import Job, JobStatus
from tidings.rendering.environment import TemplateError, compile_template
from tidings.rendering.render import RenderError, render_async, text_from_html
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


def _recipient(ctx: StepContext) -> Recipient:
    subscriber = ctx.subscriber
    return Recipient(
        subscriber_id=subscriber.subscriber_id,
        email=subscriber.email,
        phone=subscriber.phone,
        first_name=subscriber.first_name,
        last_name=subscriber.last_name,
        locale=subscriber.locale,
        push=tuple(subscriber.push),
        chat=tuple(subscriber.chat),
    )


async def _integration(ctx: StepContext, channel: Channel) -> Integration | None:
    return await Integration.find_one(
        {"environment_id": ctx.job.environment_id, "channel": channel, "primary": True, "active": True}
    )


async def run_provider_channel(ctx: StepContext, step: EmailStep | SmsStep | PushStep | ChatStep) -> Outcome:
    channel = step.channel
    assert channel is not None
    if ctx.job.sent_message_id is not None:
        # The send happened in an earlier run that died before recording its outcome: never send twice.
        return completed({"messageId": ctx.job.sent_message_id}, resumed_after_send=True)
    integration = await _integration(ctx, channel)
    if integration is None:
        return failed(f"no active primary integration for the {channel.value} channel")
    render = _Renderer(ctx)
    try:
        content = await _content(ctx, step, render)
    except (TemplateError, RenderError) as exc:
        return failed(f"template error: {exc}")
    message = OutboundMessage(
        channel=channel,
        recipient=_recipient(ctx),
        content=content,
        idempotency_key=str(ctx.job.id),
        metadata={
            "transactionId": ctx.job.transaction_id,
            "workflowId": ctx.job.workflow_id,
            "stepId": ctx.job.step_id,
            "subscriberId": ctx.job.subscriber_id,
        },
    )
    base = {"integration": integration.identifier, "provider": integration.provider_id}
    try:
        result = await ctx.deps.sender.send(integration, message)
    except DeliveryError as exc:
        return _after_failure(ctx, exc, base)
    await _record_send(ctx.job, result.provider_message_id or "sent")
    return completed(
        {"messageId": result.provider_message_id},
        **base,
        **dict(result.detail),
        missing_variables=sorted(render.missing),
    )


async def _record_send(job: Job, message_id: str) -> None:
    """Store the provider's id at once: the window in which a crash could lead to a second send stays tiny."""
    await Job.get_pymongo_collection().update_one({"_id": job.id}, {"$set": {"sent_message_id": message_id}})


def _after_failure(ctx: StepContext, error: DeliveryError, base: dict[str, Any]) -> Outcome:
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
