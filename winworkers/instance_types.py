"""The instance types the workers may run on: a floor below the config and the parameters.

Both winworkers.config (the default type) and winworkers.parameters (the
InstanceType parameter's constraint) need this, so it lives here and imports
nothing from the package.
"""

from __future__ import annotations

# Current-generation x86_64 families (Graviton cannot run Windows), large enough
# for Windows Server and the platform's worker.
INSTANCE_FAMILIES = ("m6i", "m7i", "c6i", "c7i", "r6i", "r7i", "m6a", "m7a", "t3")
INSTANCE_SIZES = ("large", "xlarge", "2xlarge", "4xlarge")
INSTANCE_TYPE_PATTERN = rf"^({'|'.join(INSTANCE_FAMILIES)})\.({'|'.join(INSTANCE_SIZES)})$"
