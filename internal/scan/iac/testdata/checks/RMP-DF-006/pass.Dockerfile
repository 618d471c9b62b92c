ARG GO_VERSION=1.22
FROM golang:${GO_VERSION} AS build
RUN go build ./...

FROM registry.example.com:5000/base@sha256:0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9 AS base

FROM build AS test
FROM ${UNKNOWN_IMAGE}
FROM scratch
