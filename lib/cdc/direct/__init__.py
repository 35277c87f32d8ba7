"""The direct path of an apply, without Spark: the Kafka client reads the range, one Python pass
decodes it with the twins of the Spark decoders, and delta-rs MERGEs it. Anything it cannot do
exactly, or any error it meets, hands the range to lib.cdc.spark before anything is written."""
