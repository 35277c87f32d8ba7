"""The bulk loader: plan each table (pure), then copy it chunk by chunk with Spark JDBC into the lake."""
