"""The `<tidings-inbox>` web widget's script and the demo page that embeds it, served from the package's files."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.resources import files

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

SCRIPT_PATH = "/widget/tidings-inbox.js"
DEMO_PATH = "/demo/inbox"


@cache
def _static(name: str) -> tuple[bytes, str]:
    """A file shipped in the wheel next to this module, and its ETag."""
    content = files("tidings.app").joinpath("static", name).read_bytes()
    return content, '"' + hashlib.sha256(content).hexdigest()[:32] + '"'


def _serve(request: Request, name: str, media_type: str, headers: dict[str, str]) -> Response:
    content, etag = _static(name)
    headers = {**headers, "ETag": etag, "X-Content-Type-Options": "nosniff"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(content, media_type=media_type, headers=headers)


async def widget_script(request: Request) -> Response:
    # Any site may load the script (it holds no secret); its API calls are what CORS and tokens guard.
    return _serve(
        request,
        "tidings-inbox.js",
        "text/javascript; charset=utf-8",
        {"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )


async def demo_page(request: Request) -> Response:
    # The page fills its form from the query string in the browser, so the server sends the same bytes to everyone.
    return _serve(
        request,
        "demo-inbox.html",
        "text/html; charset=utf-8",
        {"Cache-Control": "no-cache", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"},
    )


def widget_routes(*, demo_page_enabled: bool) -> list[Route]:
    """The script always; the demo page only when `TIDINGS_DEMO_PAGE` is on (elsewhere /demo/inbox is a 404)."""
    routes = [Route(SCRIPT_PATH, widget_script, methods=["GET"])]
    if demo_page_enabled:
        routes.append(Route(DEMO_PATH, demo_page, methods=["GET"]))
    return routes
