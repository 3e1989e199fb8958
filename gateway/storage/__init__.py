"""ClickHouse storage through clickhouse-connect: schema, writer, querier (embedded or server)."""
