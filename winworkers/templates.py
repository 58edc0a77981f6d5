"""The committed artifact: the feature's template, rendered deterministically.

The parents that embed it (inline and nested) are examples, in examples/.
"""

from __future__ import annotations

import json
from pathlib import Path

from troposphere import Template

from winworkers.build import child_template
from winworkers.config import WorkersConfig

INLINE_LIMIT = 51_200
"""CloudFormation's limit on a TemplateBody; a larger template must come from S3 (TemplateURL)."""
S3_LIMIT = 1_000_000
"""CloudFormation's limit on a template read from S3."""
FEATURE_BUDGET = 150_000
"""The project's own budget for the feature's template, minified (tests/test_budgets.py):
not an AWS limit, a check that it does not grow unnoticed (100,000 until 0.4.0, which added
the console's parameter groups and labels, about 5 KB, Windows' quiet DNS names, and the
refresh and evidence functions' request claims and releases, about 5 KB of inline code; 110,000 until
the wake function, its schedule, the queue-wait alarm and the dashboard, about 12 KB; 115,000
until ImageSource=baked's Image Builder pipeline, its build network and endpoints, and the baked
boot's config sets and scripts, about 28 KB; 145,000 until that pipeline's review: its execution role, the
first image's Fast Launch distribution, the build endpoints' policies of named actions, BuildEndpointsCidr
and its Rule, about 1.5 KB).
The feature's template is over INLINE_LIMIT, so it is always deployed from S3: as a nested
stack's TemplateURL, inside the platform's parent (itself from S3), or with winworkers deploy --template-bucket."""


def deploy_note(minified_bytes: int) -> str:
    """What winworkers build says of a template: which way CloudFormation takes it."""
    if minified_bytes <= INLINE_LIMIT:
        return (
            f"{minified_bytes:,} bytes minified: fits a TemplateBody ({INLINE_LIMIT:,}) once minified "
            "(winworkers deploy minifies); the file as written is pretty-printed"
        )
    return (
        f"{minified_bytes:,} bytes minified, over the {INLINE_LIMIT:,}-byte TemplateBody limit: deploy it "
        "from S3 (winworkers deploy --template-bucket BUCKET, aws cloudformation deploy --s3-bucket, "
        "or as a nested stack's TemplateURL)"
    )


def render(template: Template) -> str:
    """Deterministic JSON: sorted keys, two-space indent, UTF-8 rather than escapes
    (cfn-lint 1.58 rejects the surrogate-pair escapes of characters outside the BMP)."""
    return json.dumps(template.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def all_templates(config: WorkersConfig | None = None) -> dict[str, Template]:
    """What winworkers build writes, by file name: the feature's template, which is
    also the child to upload for nested_stack with the same config."""
    return {"winworkers.json": child_template(config)}


def write_templates(out: Path, config: WorkersConfig | None = None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, template in all_templates(config).items():
        path = out / name
        path.write_text(render(template), encoding="utf-8")
        written.append(path)
    return written
