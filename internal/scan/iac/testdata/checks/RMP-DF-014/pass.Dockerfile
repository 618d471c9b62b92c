FROM debian:12-slim
RUN curl -fsSL --cacert /etc/ssl/ca.pem https://internal.example.com/ca.pem -o /ca.pem
RUN pip install --index-url https://pypi.example.com/simple requests
ENV NODE_TLS_REJECT_UNAUTHORIZED=1
RUN curl --keepalive-time 5 https://example.com
