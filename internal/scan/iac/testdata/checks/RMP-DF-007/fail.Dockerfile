FROM debian:12-slim
# want
RUN curl -fsSL https://get.example.com/install.sh | sh
# want
RUN wget -qO- https://example.com/setup | sudo -E bash -
# want
RUN <<EOF
set -e
curl -sL https://deb.example.com/setup | bash
EOF
