FROM debian:12-slim
# want
RUN apt-get update && apt-get install -y --no-install-recommends curl
