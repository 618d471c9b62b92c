FROM golang:1.22 AS build
USER builder
RUN go build -o /app .

# want
FROM debian:12-slim
COPY --from=build /app /app
CMD ["/app"]
