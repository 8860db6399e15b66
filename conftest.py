# The guest suite's pytest view (collects guest/ programs, one VM per session).
pytest_plugins = ["harness.pytest_plugin"]
