"""winworkers: CloudFormation for the platform's optional, isolated Windows worker fleet.

>>> from winworkers import WorkersConfig, build_template
>>> template = build_template(WorkersConfig())
"""

from winworkers.build import Feature, add_to, build_template, nested_stack
from winworkers.config import ConfigError, WorkersConfig

__version__ = "0.1.0"
__all__ = ["ConfigError", "Feature", "WorkersConfig", "__version__", "add_to", "build_template", "nested_stack"]
