FROM debian:12-slim
USER app
# want
RUN sudo apt-get install -y --no-install-recommends vim
# want
RUN make && (sudo make install)
