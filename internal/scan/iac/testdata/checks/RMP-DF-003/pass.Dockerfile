FROM debian:12-slim
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2015d0c6f7c4de71 https://example.com/tool.tar.gz /opt/
ADD vendor.tar.gz /opt/
