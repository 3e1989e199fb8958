# The gateway image: the package installed with pip, configured by a mounted YAML file.
FROM python:3.11-slim

WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install --no-cache-dir . && rm -rf /src

WORKDIR /var/lib/metrics-gateway
RUN useradd --system --home-dir /var/lib/metrics-gateway gateway \
    && chown gateway /var/lib/metrics-gateway
USER gateway

EXPOSE 9201
ENTRYPOINT ["metrics-gateway"]
CMD ["serve", "--config", "/etc/metrics-gateway/gateway.yml"]
