FROM golang:1.22 AS build
USER root
RUN go build -o /app .

FROM debian:12-slim
USER root
COPY --from=build /app /app
USER 10001:10001
CMD ["/app"]
