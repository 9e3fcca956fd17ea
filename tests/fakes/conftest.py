from tests.fakes.fixtures import adapters, fakes, fakes_session

__all__ = ["adapters", "fakes", "fakes_session"]
