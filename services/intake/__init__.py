"""intake: incident reports from missions (HTTP and a Kafka topic), matched to workers."""
