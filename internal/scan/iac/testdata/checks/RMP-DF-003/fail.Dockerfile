FROM debian:12-slim
# want
ADD https://example.com/tool.tar.gz /opt/
COPY . /src
