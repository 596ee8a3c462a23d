# The demo's image (docker-compose.yml's web and client): Node for the web server, curl and dig
# for the client (getent is in every Debian image). Built with the repo as context:
#   docker build -f compose/demo.Dockerfile -t cnmd-demo .
# Same base as cnmd's own image; apt runs only for what the base lacks.
ARG BASE_IMAGE=node:20-bookworm-slim
FROM ${BASE_IMAGE}
COPY compose/apt-missing.sh /usr/local/sbin/apt-missing
RUN apt-missing curl dnsutils
COPY compose/demo/ /opt/cnmd-demo/
CMD ["sleep", "infinity"]
