FROM debian:12-slim
EXPOSE 80
# want
EXPOSE 443 22/tcp
