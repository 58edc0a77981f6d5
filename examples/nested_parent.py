"""The same platform stack, with Windows Workers as a nested stack: nested_stack
adds one AWS::CloudFormation::Stack to the platform's template, and the feature's
own template (the child) is uploaded to S3 first. One config, in workers.toml,
builds both, and check_pair refuses a parent and a child built from different ones.

    winworkers build --config examples/workers.toml --out build/
    python examples/nested_parent.py build/   # writes build/parent-nested.json (and the same child)
    winworkers check build/parent-nested.json build/winworkers.json
    aws s3 cp build/winworkers.json s3://BUCKET/winworkers.json
    # deploy build/parent-nested.json with WinTemplateUrl=https://BUCKET.s3.REGION.amazonaws.com/winworkers.json
"""

from __future__ import annotations

import sys
from pathlib import Path

from inline_parent import platform
from troposphere import Output, Parameter, Ref, Template

from winworkers import WorkersConfig, check_pair, load_config, nested_stack
from winworkers.templates import render

CONFIG = load_config(Path(__file__).with_name("workers.toml"))


def nested_parent(config: WorkersConfig = CONFIG) -> tuple[Template, Template]:
    """The platform with the feature nested, and the child to upload for it."""
    template, inputs = platform()
    url = template.add_parameter(
        Parameter(
            "WinTemplateUrl",
            Type="String",
            AllowedPattern=r"^https://\S+$",
            ConstraintDescription="the https:// URL of the uploaded child (not s3://)",
            Description="Where the child (winworkers build --config workers.toml) was uploaded",
        )
    )
    nested = nested_stack(template, Ref(url), config, wired=inputs)
    template.add_output(
        Output(
            "WorkersGroup",
            Value=nested.output("GroupName"),
            Condition=nested.enabled,
            Description="Workers' group",
        )
    )
    return template, nested.child


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    out.mkdir(parents=True, exist_ok=True)
    parent, child = nested_parent()
    check_pair(parent, child)
    for name, template in (("parent-nested.json", parent), ("winworkers.json", child)):
        (out / name).write_text(render(template), encoding="utf-8")
        print(out / name)
