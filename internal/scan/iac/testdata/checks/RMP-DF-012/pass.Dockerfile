FROM debian:12-slim AS base
HEALTHCHECK --interval=30s CMD curl -f http://localhost:8080/healthz || exit 1

FROM base
COPY app /app
