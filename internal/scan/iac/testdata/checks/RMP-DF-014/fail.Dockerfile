FROM debian:12-slim
# want
RUN curl -fsSLk https://internal.example.com/ca.pem -o /ca.pem
# want
RUN pip install --trusted-host pypi.example.com requests
# want
ENV NODE_TLS_REJECT_UNAUTHORIZED=0
# want
RUN apt-get install -y --allow-unauthenticated --no-install-recommends foo
