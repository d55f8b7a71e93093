#!/usr/bin/env python3
"""Runbook step "backup verified": the latest database backup is complete, restore-tested and
recent enough to roll back to.

    python scripts/verify_backup.py --url http://127.0.0.1:8765 --max-age-hours 24

Prints "Backup verified: ..." and exits 0, or says what is wrong on stderr and exits 1.
Standard library only, so it runs wherever the deploy does.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import urllib.error
import urllib.request


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="base URL of the control-plane API")
    parser.add_argument("--max-age-hours", type=float, default=24.0)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    try:
        with urllib.request.urlopen(f"{args.url.rstrip('/')}/v1/backups/latest",
                                    timeout=args.timeout) as answer:
            backup = json.load(answer)
    except (OSError, urllib.error.URLError, ValueError) as exc:
        print(f"cannot read the latest backup from {args.url}: {exc}", file=sys.stderr)
        return 1
    problems = []
    if backup.get("status") != "completed":
        problems.append(f"status is {backup.get('status')!r}, not 'completed'")
    if not backup.get("restore_tested"):
        problems.append("no restore test recorded")
    if not backup.get("size_bytes"):
        problems.append("the backup is empty")
    try:
        finished = dt.datetime.fromisoformat(str(backup.get("finished_at")))
    except ValueError:
        problems.append(f"finished_at {backup.get('finished_at')!r} is not a date")
        age_hours = 0.0
    else:
        age_hours = (dt.datetime.now(dt.UTC) - finished).total_seconds() / 3600
        if age_hours > args.max_age_hours:
            problems.append(f"it is {age_hours:.1f}h old (max {args.max_age_hours:g}h)")
    name = backup.get("id", "?")
    if problems:
        print(f"Backup {name} NOT verified: {'; '.join(problems)}", file=sys.stderr)
        return 1
    size_mb = backup["size_bytes"] / 1_000_000
    print(f"Backup verified: {name} finished {backup['finished_at']} ({age_hours:.1f}h ago, "
          f"{size_mb:.1f} MB, restore tested)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
