"""Front doors for readings: decode -> verify -> sequence. HTTP in api/, MQTT in ingest/mqtt."""
