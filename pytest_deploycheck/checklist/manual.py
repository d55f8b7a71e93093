"""``manual:`` entries: a step a person confirms. It fails, saying what to confirm and how,
until the run acknowledges it with ``--ack <id>`` (or ``--ack all``)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import CheckError
from ..inputs.located import At
from ..inputs.templating import names_in, render
from ..inputs.yamlfile import YamlMap
from .base import Context, Outcome

KEYS = ("manual",)


@dataclass(frozen=True)
class ManualEntry:
    text: str
    key: str = "manual"

    def names(self) -> set[str]:
        return names_in(self.text)

    def run(self, context: Context) -> Outcome:
        try:
            text = str(render(self.text, context.scope))
        except CheckError as exc:
            return Outcome("failed", str(exc))
        by = context.acknowledged_by()
        if by is not None:
            return Outcome("passed", "", acknowledged=by, note=f"acknowledged (--ack {by}): {text}",
                           data={"text": text, "acknowledged_by": by})
        return Outcome("failed", f"not acknowledged: {text}",
                       [f"  manual step: {text}",
                        f"  confirm it, then run again with --ack '{context.ids[0]}' "
                        f"(or --ack all for every manual step)"],
                       data={"text": text})


def parse(node: YamlMap, at: At) -> ManualEntry:
    return ManualEntry(str(node["manual"]))
