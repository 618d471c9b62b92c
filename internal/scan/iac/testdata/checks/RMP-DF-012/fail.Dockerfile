FROM golang:1.22 AS build
HEALTHCHECK CMD ["true"]

# want
FROM gcr.io/distroless/static:nonroot
COPY --from=build /app /app
