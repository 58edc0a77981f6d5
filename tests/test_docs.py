"""The README and the pages in docs/ hold together: every relative link reaches a file, every
#anchor a heading (as GitHub names it), every page of docs/ is reachable from the README, and
the README opens with the two commands the developer guide puts first."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)\)")


def _prose(text: str) -> str:
    """text without its fenced code blocks (their `#` lines are not headings, their brackets not links)."""
    kept, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            kept.append(line)
    return "\n".join(kept)


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped (not - or _), spaces as -."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in a Markdown file, duplicates numbered as GitHub numbers them."""
    seen: dict[str, int] = {}
    found = set()
    for line in _prose(path.read_text(encoding="utf-8")).splitlines():
        match = re.match(r"^#{1,6} (.+?)\s*#*\s*$", line)
        if not match:
            continue
        anchor = github_anchor(match.group(1))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        found.add(anchor if count == 0 else f"{anchor}-{count}")
    return found


def links(path: Path) -> list[str]:
    return LINK.findall(_prose(path.read_text(encoding="utf-8")))


def test_github_anchors_are_computed_as_github_does() -> None:
    assert github_anchor("Inline: `add_to`") == "inline-add_to"
    assert github_anchor("A worker's lifecycle") == "a-workers-lifecycle"
    assert github_anchor("What is closed, and how") == "what-is-closed-and-how"
    assert github_anchor("Upgrading from 0.1.0") == "upgrading-from-010"
    assert github_anchor("[0.2.0] - 2026-12-01") == "020---2026-12-01"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...: not ours to check
            continue
        file, _, anchor = target.partition("#")
        destination = (page.parent / file).resolve() if file else page
        if not destination.exists() or ROOT not in destination.parents:
            broken.append(f"{target}: no file {destination}")
        elif anchor and (destination.suffix != ".md" or anchor not in anchors(destination)):
            broken.append(f"{target}: no heading #{anchor} in {destination.relative_to(ROOT)}")
    assert broken == []


def test_the_checker_finds_a_broken_anchor_and_file(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## Real one\n\n[ok](#real-one) [bad](#no-such) [gone](missing.md)\n```\n# not a heading\n```\n"
    )
    assert anchors(page) == {"title", "real-one"}
    assert links(page) == ["#real-one", "#no-such", "missing.md"]


def test_every_docs_page_is_reachable_from_the_readme() -> None:
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in links(ROOT / "README.md")}
    assert [p.name for p in PAGES[1:] if p.resolve() not in linked] == []


def test_the_readme_opens_with_the_two_commands() -> None:
    # The developer guide: the README opens with the two commands, as its first block.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    title, first_block = readme.split("\n\n", 2)[:2]
    assert title == "# winworkers"
    lines = first_block.splitlines()
    assert lines[0] == "```sh" and lines[-1] == "```", first_block
    assert [line.split("#")[0].strip() for line in lines[1:-1]] == ["make templates", "make test"]


def _section(text: str, heading: str) -> str:
    return text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]


def test_no_page_says_an_idle_fleet_costs_nothing() -> None:
    # With the feature on and MinSize 0 the endpoints, alarms and DNS Firewall still bill
    # (register: the README's cost rows): neither a page nor a parameter's description says otherwise.
    import json

    texts = {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8") for p in PAGES}
    for path in sorted((ROOT / "templates").glob("*.json")):
        parameters = json.loads(path.read_text(encoding="utf-8"))["Parameters"]
        texts[path.name] = "\n".join(p.get("Description", "") for p in parameters.values())
    assert [
        name for name, text in texts.items() if re.search(r"(?<!not )idles? at no cost|idles? for free", text, re.I)
    ] == []
    costs = _section(texts["docs/operations.md"], "## What it costs")
    assert "does not idle at no cost" in costs and "interface endpoints" in costs
    assert "licence is included" in costs and "https://aws.amazon.com/ec2/pricing/on-demand/" in costs


def test_the_warm_pool_cost_is_the_default_volume_at_the_gp3_price(feature: dict[str, Any]) -> None:
    # A stopped pooled worker pays its gp3 root volume only (register row 166): $0.08 per GB-month.
    gib = int(feature["Parameters"]["WinRootVolumeSize"]["Default"])
    pool = int(feature["Parameters"]["WinMaxSize"]["Default"])
    capacity = (ROOT / "docs" / "capacity.md").read_text(encoding="utf-8")  # "A warm pool"
    costs = _section((ROOT / "docs" / "operations.md").read_text(encoding="utf-8"), "## What it costs")
    assert f"{gib} x $0.08 = ${gib * 0.08:.2f} a month" in capacity
    assert f"The default\nidle pool of {pool} is ${pool * gib * 0.08:.2f} a month" in capacity
    assert f"${gib * 0.08:.2f} a month each with the default" in costs.replace("\n", " ")
    # The scaling model (BENCHMARKS.md's idle costs) prices the volume at the same rate, and the
    # template's default volume is the one it models.
    import scaling_model as model

    assert (model.PRICES.ebs_gb_month, model.PRICES.volume_gb) == (0.08, gib)


def test_review2_the_claim_tag_s_drift_is_told_not_denied() -> None:
    # Review 2: register row 197 says the claim tag "is not in the template, so CloudFormation
    # manages nothing of it". But the group's Tags property is in the template, and drift
    # detection compares it with the group's actual tags: a value added to a list property is a
    # PropertyDifference of DifferenceType ADD (CloudFormation API reference, PropertyDifference).
    # After the first refresh that a stack update starts, the group (WinGroup) reports MODIFIED on
    # Tags for as long as the stack lives, in a project whose compute docstring sells "no drift".
    # An operator running drift detection (or a compliance tool that does) must be told.
    rows = (ROOT / "docs" / "aws-behaviours.md").read_text(encoding="utf-8")
    (row,) = [line for line in rows.splitlines() if line.startswith("| 197 |")]
    updates = (ROOT / "docs" / "updates.md").read_text(encoding="utf-8")  # "Updating a running stack"
    at = updates.index("winworkers:refresh-request")
    claim = updates[at - 400 : at + 600]
    assert "manages nothing of it" not in row
    assert "drift" in row.lower() and "drift" in claim.lower()


def test_the_readme_is_a_guide_under_500_lines() -> None:
    # Issue 29: a newcomer reads the README top to bottom; reference tables live in docs/.
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) < 500, len(lines)
    headings = [line[3:] for line in lines if line.startswith("## ")]
    order = ["What it is", "Install", "Quickstart", "Use as a library", "Security model", "Operations"]
    assert [h for h in headings if h in order] == order, headings


def test_every_generated_table_is_in_docs_not_in_the_readme() -> None:
    # The README links to the reference; readme_table.DOCUMENTS says where each generated block lives.
    import readme_table

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_table.DOCUMENTS["README.md"] == ()
    assert re.findall(r"<!-- ([\w./-]+):begin -->", readme) == []
    for page, blocks in readme_table.DOCUMENTS.items():
        text = (ROOT / page).read_text(encoding="utf-8")
        for block in blocks:
            assert text.count(f"<!-- {block}:begin -->") == 1 and readme_table.document_of(block) == ROOT / page
            if page != "README.md":
                assert page in {target.partition("#")[0] for target in links(ROOT / "README.md")}, page


def test_the_lint_rule_reference_is_generated_from_each_rules_metadata() -> None:
    # As cfn-lint generates docs/rules.md: each rule's id, shortdesc, description, source_url and
    # tags, then its docstring (and its reference_table), from the rule classes, one source.
    import inspect

    import readme_table

    from winworkers.docs import lint_rule_reference
    from winworkers.lint import rules

    page = readme_table.document_of("lint-rules")
    text = page.read_text(encoding="utf-8")
    block = text.split("<!-- lint-rules:begin -->\n", 1)[1].split("<!-- lint-rules:end -->", 1)[0]
    assert block == lint_rule_reference(), "docs/lint-rules.md is stale: make templates"
    found = [getattr(rules, name) for name in rules.__all__]
    assert f"**{len(found)}** rules" in block
    for rule in found:
        path = f"../winworkers/lint/rules/{Path(inspect.getfile(rule)).name}"
        (row,) = [line for line in block.splitlines() if line.startswith(f"| [{rule.id}]({path}) |")]
        assert rule.shortdesc in row and f"[Source]({rule.source_url})" in row
        assert " ".join(rule.description.split()).replace("|", "\\|") in row
        assert all(f"`{tag}`" in row for tag in rule.tags)
        first = " ".join(inspect.getdoc(rule).replace("``", "`").split("\n\n")[0].split())
        assert first in " ".join(block.split()), rule.id
        # Outside the generated block, no hand-kept row of the rule.
        assert f"| {rule.id} |" not in text.replace(block, "")
    # Guidance that is not metadata lives in the rule too: E9106's forms, each row in the table.
    (e9106,) = [rule for rule in found if rule.id == "E9106"]
    assert len(e9106.reference_table) > 10
    for form, waits, _ in e9106.reference_table[1:]:
        assert f"| {form.replace('|', chr(92) + '|')} | {waits.replace('|', chr(92) + '|')} |" in block


def test_a_rule_without_a_docstring_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from winworkers.docs import lint_rule_reference
    from winworkers.lint import rules

    monkeypatch.setattr(rules.GatewayEndpointPrincipal, "__doc__", None)
    with pytest.raises(ValueError, match="E9101 has no docstring"):
        lint_rule_reference()


def test_the_readmes_library_lines_run_on_the_example_platform() -> None:
    # The README's Python is not generated: each of its calls runs, alone (inline *or* nested: one
    # prefix embeds once per parent), on the example platform's template and inputs.
    import inline_parent
    from troposphere import Parameter

    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)
    lines = [line.split("  #")[0] for block in blocks for line in block.splitlines() if line.strip()]
    imports = "\n".join(line for line in lines if line.startswith(("from ", "import ")))
    calls = [line for line in lines if not line.startswith(("from ", "import ", "#"))]
    assert len(calls) == 2, calls
    made = []
    for call in calls:
        template, inputs = inline_parent.platform()
        url = template.add_parameter(Parameter("WinTemplateUrl", Type="String"))
        scope = {"template": template, "inputs": inputs, "url": url}
        exec(compile(imports + "\n" + call, "README.md", "exec"), scope)
        made.append(
            sorted({r.resource_type for r in template.resources.values()} - {"AWS::SQS::Queue", "AWS::S3::Bucket"})
        )
    assert "AWS::AutoScaling::AutoScalingGroup" in made[0] and made[1] == ["AWS::CloudFormation::Stack"]
