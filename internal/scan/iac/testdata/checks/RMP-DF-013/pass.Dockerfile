FROM debian:12-slim
COPY app.py config.yaml /srv/
ADD vendor.tar.gz /opt/
ADD https://example.com/tool /usr/local/bin/tool
ADD git@github.com:example/repo.git /src
