"""Template placeholders: `${name}` (Aliyun style) and `{n}` (Tencent style)."""

from __future__ import annotations

import re
from collections.abc import Sequence

# `${...}` also covers Huawei's `${1}` / `${NUM_6}` forms.
_PLACEHOLDER = re.compile(r"\$\{([^{}\s]+)\}|\{(\d+)\}")


class TemplateError(ValueError):
    """The template's placeholders cannot be filled as written."""


def placeholder_names(template_content: str) -> list[str]:
    """The distinct placeholders, in the order params fill them.

    `${name}` placeholders take params in order of first appearance. Numbered `{n}`
    placeholders take param n (Tencent fills `{1}`, `{2}` ... by position in
    TemplateParamSet, so the number, not the appearance, decides); they must be numbered
    1..k without gaps.
    """
    named: list[str] = []
    numbered: set[int] = set()
    for match in _PLACEHOLDER.finditer(template_content):
        if match.group(1) is not None:
            if match.group(1) not in named:
                named.append(match.group(1))
        else:
            numbered.add(int(match.group(2)))
    if named and numbered:
        raise TemplateError("a template may use ${name} or {n} placeholders, not both")
    if numbered:
        if numbered != set(range(1, len(numbered) + 1)):
            raise TemplateError("{n} placeholders must be numbered 1, 2, ... without gaps")
        return [str(n) for n in range(1, len(numbered) + 1)]
    return named


def render_content(template_content: str, names: Sequence[str], params: Sequence[str]) -> str:
    """Fill every placeholder in one pass, so a param containing `${x}` stays literal."""
    values = dict(zip(names, params, strict=True))

    def replace(match: re.Match[str]) -> str:
        return values[match.group(1) if match.group(1) is not None else match.group(2)]

    return _PLACEHOLDER.sub(replace, template_content)
