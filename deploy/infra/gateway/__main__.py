from deploy.infra.gateway.app import main

main()
