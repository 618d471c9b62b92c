FROM golang:1.22 AS build
USER root
RUN go build -o /app .

FROM debian:12-slim
COPY --from=build /app /app
USER app
# want
USER root:root
CMD ["/app"]
