"""How the servers start and are configured: local Kafka (KRaft) and Apicurio servers (:mod:`deploy.infra`),
topics (:mod:`deploy.topics`), ACLs (:mod:`deploy.acl`) and schema registration (:mod:`deploy.governance`),
next to the files they read (topics.yaml, acls.yaml, policies/, kafka/, maven/)."""
