"""Local Kafka (KRaft) and Apicurio Registry servers, started from Maven Central jars on 127.0.0.1."""
