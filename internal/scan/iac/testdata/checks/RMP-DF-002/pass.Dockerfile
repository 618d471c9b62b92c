FROM debian:12-slim AS base
RUN useradd --system app
USER app

FROM base
COPY app /app
CMD ["/app"]
