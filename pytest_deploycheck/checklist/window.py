"""``window: true`` entries: the environment's deploy windows and blackouts, at now or at
``--deploy-time``. A failure names the next allowed window; an emergency-only window passes
when the item is acknowledged by its own id (``--ack all`` is not an emergency)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..inputs.located import At
from ..inputs.windows import describe_window
from ..inputs.yamlfile import YamlMap
from .base import Context, Outcome

KEYS = ("window",)


@dataclass(frozen=True)
class WindowEntry:
    key: str = "window"

    def names(self) -> set[str]:
        return set()

    def run(self, context: Context) -> Outcome:
        windows = context.env.windows
        at = context.deploy_time
        when = at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if windows is None:
            return Outcome("passed", "", note=f"environment '{context.env.name}' defines no "
                           f"deploy windows: always open")
        decision = windows.decide(at)
        data = {"at": when, "open": decision.open, "reason": decision.reason,
                "window": describe_window(decision)}
        if decision.open and decision.warning:
            data["warning"] = decision.warning
            return Outcome("warned", f"deploy at {when} is {decision.warning}", data=data)
        if decision.open:
            return Outcome("passed", "", data=data,
                           note=f"deploy window open at {when}: {decision.reason}, "
                           f"{describe_window(decision)}")
        lines = [f"  evaluated at: {when}", f"  FAILED {decision.reason}",
                 f"  next allowed window: {describe_window(decision)}"]
        if not decision.emergency:
            # Read by the summary when an --ack named this item: why it did not count.
            data["ack_refused"] = (f"{decision.reason}, and --ack lets a deploy through only "
                                   f"in an emergency-only window (emergency: true) or a "
                                   f"blackout with 'emergency: allowed'")
        if decision.emergency:
            by = context.acknowledged_by(explicit_only=True)
            if by is not None:
                return Outcome("passed", "", acknowledged=by, data=data,
                               note=f"emergency deploy acknowledged (--ack {by}): "
                               f"{decision.reason}")
            lines.append(f"  an emergency deploy proceeds with --ack '{context.ids[0]}'")
        return Outcome("failed", f"deploy window closed at {when}: {decision.reason}; next: "
                       f"{describe_window(decision)}", lines, data=data)


def parse(node: YamlMap, at: At) -> WindowEntry:
    return WindowEntry()
