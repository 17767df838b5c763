"""ZenML's rules, as the core needs them (no ZenML import here, none from above).

The low layer of stacksecrets' ZenML code. The engine, the plan and the loaders use it; it
uses only the core (references, the stack model, errors). Nothing in it imports ZenML at
module import time, and nothing imports from the clients, the CLI or the stores:

- ``rules``: where ZenML 0.98's run time resolves a reference and where it leaves it as text;
- ``runconfig``: run configuration files (``with_options(config_path=...)``) read as ZenML
  reads them.

The other ZenML code lives where its layer is: the pipeline hook and ``settings_sources`` at
the top beside the clients (``stacksecrets.zenml``, implemented in ``_zenml_integration``),
the ZenML store, its HTTP session and its stack source with the stores
(``stores/_zenml*.py``), and finding the store as ZenML finds its server with store discovery
(``stores/_discovery.py``).
"""
