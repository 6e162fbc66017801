import pytest

from deploy import governance, topics


@pytest.fixture(scope="session")
def bus(settings):
    """Topics from deploy/topics.yaml applied and working-tree schemas registered, on the real servers."""
    topics.apply_topics(topics.load_topics())
    governance.register_all()
    return settings
