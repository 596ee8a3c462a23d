# NATS with JetStream from Debian's package, for docker-compose.yml's `cluster` profile (cnmd's
# hosts share their view through it). Same base as cnmd's image; apt runs only if the base lacks it.
ARG BASE_IMAGE=node:20-bookworm-slim
FROM ${BASE_IMAGE}
COPY compose/apt-missing.sh /usr/local/sbin/apt-missing
RUN apt-missing nats-server
# NATS_NAME: this server's name (the host's); NATS_ROUTES: the other hosts' servers
# (nats://H2:6222,nats://H3:6222): with them, a three-server JetStream cluster.
CMD ["sh", "-c", "exec nats-server -js -sd /data -n \"${NATS_NAME:-cnmd}\" -m 8222 ${NATS_ROUTES:+--cluster_name cnmd --cluster nats://0.0.0.0:6222 --routes \"$NATS_ROUTES\"}"]
