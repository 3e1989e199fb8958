# The gateway image: the package installed with pip, configured by a mounted YAML file.
# It is for a ClickHouse server or cluster (http(s):// DSN), so the embedded ClickHouse (chdb,
# the `embedded` extra) is left out; `--build-arg EXTRAS=[embedded]` puts it in.
FROM python:3.11-slim

ARG EXTRAS=""
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install --no-cache-dir ".${EXTRAS}" && rm -rf /src

WORKDIR /var/lib/metrics-gateway
RUN useradd --system --home-dir /var/lib/metrics-gateway gateway \
    && chown gateway /var/lib/metrics-gateway
USER gateway

EXPOSE 9201
ENTRYPOINT ["metrics-gateway"]
CMD ["serve", "--config", "/etc/metrics-gateway/gateway.yml"]
