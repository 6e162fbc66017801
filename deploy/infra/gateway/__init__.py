"""The registry gateway: the one schema-registry URL clients use. It authenticates every request (HTTP basic,
the principals' own passwords, checked against scrypt hashes), lets service principals use the whole
Confluent-compatible API and partner principals read only their own derived subjects (:mod:`.policy`), and
forwards what it allows to Apicurio over TLS with a token only it can sign (:mod:`.token`). The service is
:mod:`.app` (Starlette on uvicorn, httpx to Apicurio); its start and health check live in
:mod:`deploy.infra.registry_gateway`."""
