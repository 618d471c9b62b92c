FROM debian:12-slim
# want
ADD app.py config.yaml /srv/
ADD vendor.tar.gz /opt/
