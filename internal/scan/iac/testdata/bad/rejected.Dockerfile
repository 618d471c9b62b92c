FROM debian:12-slim
ENV ONLYKEY
USER root
