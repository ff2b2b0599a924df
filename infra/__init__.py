"""The stream pipeline's services (Kafka, PostgreSQL), schema migrations and database writers."""
