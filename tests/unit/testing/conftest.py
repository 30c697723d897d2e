"""The testing kit's unit tests run child pytest sessions in-process with pytest's ``pytester``."""

pytest_plugins = ["pytester"]
