class InfraError(Exception):
    """A one-line, actionable reason why the local servers cannot be started or used."""
