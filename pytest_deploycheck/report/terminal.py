"""The run's summary in the terminal: each environment's verdict, its failures, rollback and
notifications, as lines with their markup (the gate plugin writes them, redacted)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from ..gate import OK_VERDICTS, EnvGate, RollbackRun, verified

# A line and its terminal markup (``red``, ``green``, ``bold``).
Line = tuple[str, dict[str, bool]]


def counts_text(gate: EnvGate) -> str:
    """``11 passed, 7 failed, 1 skipped, 1 inconclusive``: how the gate's items ended."""
    count = gate.counts()
    counts = f"{count['passed'] + count['warned']} passed, {count['failed']} failed, " \
             f"{count['skipped']} skipped"
    if count["inconclusive"]:
        counts += f", {count['inconclusive']} inconclusive"
    if count["warned"]:
        counts += f", {count['warned']} with warnings"
    return counts


def gate_lines(envs: Mapping[str, EnvGate], collection_errors: list[str]) -> Iterator[Line]:
    """The lines of every environment's gate, in the order they were decided."""
    for env, gate in envs.items():
        records = gate.ordered()
        verdict = gate.verdict or gate.decide()
        ok = verdict in OK_VERDICTS
        yield f"{env}: {verdict} ({counts_text(gate)})", ({"green": True, "bold": True} if ok
                                                         else {"red": True, "bold": True})
        for error in gate.errors:
            label = "NOT COLLECTED" if error in collection_errors else "NOT EVALUATED"
            yield f"  {label} {error}", {"red": True}
        if not records and not gate.errors:
            yield f"  no check ran against {env}", {}
        elif records and not gate.errors and all(r.unneeded for r in records):
            yield f"  no check was needed in {env} (each was left out by its if:)", {}
        elif records and not gate.errors and gate.counts()["skipped"] == len(records):
            yield f"  no check ran against {env} (every check was skipped)", {}
        for result in gate.announce:
            yield (f"  ANNOUNCE {result.name}: {result.outcome}"
                   + (f" ({result.message})" if result.message else "")), {}
        for record in records:
            where = f"({record.file}:{record.line})"
            if record.outcome == "failed":
                yield (f"  FAILED {record.nodeid}  ({record.file}:{record.line}; on_fail: "
                       f"{record.on_fail})"), {}
                if record.message:
                    yield f"         {record.message}", {}
            elif record.outcome == "warned":
                yield f"  WARNING {record.nodeid}  {where}", {}
                yield f"         {record.message}", {}
            elif record.outcome == "inconclusive":
                yield f"  INCONCLUSIVE {record.nodeid}  {where}", {}
                if record.message:
                    yield f"         {record.message}", {}
            if record.acknowledged:
                yield f"  ACKNOWLEDGED {record.nodeid} (--ack {record.acknowledged})", {}
            if record.note:
                yield f"  NOTE {record.nodeid}: {record.note}", {}
            if record.unneeded:
                yield f"  NOT NEEDED {record.nodeid}: {record.unneeded}", {}
        measured = [f"{r.id} = {r.value:g}" + (f" (baseline {r.baseline:g})"
                                                if isinstance(r.baseline, (int, float)) else "")
                    for r in records if isinstance(r.value, (int, float))]
        if measured:
            yield f"  MEASURED {'; '.join(measured)}", {}
        yield from _rollback_lines(gate.rollback)
        for result in gate.notify:
            yield (f"  NOTIFY {result.name}: {result.outcome}"
                   + (f" ({result.message})" if result.message else "")), {}


def _rollback_lines(run: RollbackRun | None) -> Iterator[Line]:
    """What the rollback did, or why it did not run."""
    if run is None:
        return
    if run.vetoed_by:
        yield (f"  ROLLBACK vetoed by {', '.join(run.vetoed_by)} (on_fail: block after the "
               f"deploy); triggered by {', '.join(run.triggered_by)}"), {"red": True}
        return
    if run.mode in ("off", "defer"):
        why = "skipped (--rollback off)" if run.mode == "off" else \
            "deferred to the merge of the shards (--rollback defer)"
        yield f"  ROLLBACK {why}; triggered by {', '.join(run.triggered_by)}", {}
        return
    if not run.ran:
        what = "no rollback actions" if not run.actions else \
            f"no rollback action for {', '.join(run.services or ())}"
        yield (f"  ROLLBACK needed but the environment has {what}; triggered by "
               f"{', '.join(run.triggered_by)}"), {"red": True}
        return
    label = "ROLLBACK (dry run)" if run.mode == "dry-run" else "ROLLBACK"
    services = f" (services: {', '.join(run.services)})" if run.services is not None else ""
    yield f"  {label} triggered by {', '.join(run.triggered_by)}{services}", {}
    for result in run.actions:
        indent = "      fallback " if result.fallback_for else "    "
        text = f"{indent}{result.type} '{result.name}': {result.outcome}"
        if result.recovered:
            text += " (recovered by its fallback)"
        if run.mode != "dry-run" and result.outcome != "skipped":
            text += f" in {result.duration:.2f}s"
        if result.message:
            text += f" ({result.message})"
        yield text, {}
    for found in run.verification or ():
        label = "VERIFIED" if verified(found) else "NOT VERIFIED"
        yield (f"    {label} {found['id']}: {found['outcome']}"
               + (f" ({found['message']})" if found.get("message") else "")), {}
    if run.reaction is not None:
        yield (f"    started {run.reaction * 1000:.0f}ms after the failing report "
               f"(--rollback-fast)"), {}
