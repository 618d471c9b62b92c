ARG BASE=alpine:latest
# want
FROM ubuntu
RUN echo hi

# want
FROM python:latest AS app
RUN echo hi

# want
FROM ${BASE}
