"""winworkers: CloudFormation for the platform's optional, isolated Windows worker fleet.

>>> from winworkers import WorkersConfig, build_template
>>> template = build_template(WorkersConfig())

add_to embeds the feature in a parent template; nested_stack nests it, and
child_template gives the child to upload; check_pair checks such a pair. Both
embeddings take the parent's own switch (switch=: a parameter or condition name,
or a handle; default EnableWinTaskScriptService).
"""

from winworkers._version import __version__
from winworkers.build import (
    Feature,
    NestedFeature,
    add_to,
    build_template,
    check_pair,
    child_template,
    nested_stack,
)
from winworkers.config import ConfigError, WorkersConfig, load_config

__all__ = [
    "ConfigError",
    "Feature",
    "NestedFeature",
    "WorkersConfig",
    "__version__",
    "add_to",
    "build_template",
    "check_pair",
    "child_template",
    "load_config",
    "nested_stack",
]
