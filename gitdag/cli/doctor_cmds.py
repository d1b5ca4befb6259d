"""`gitdag doctor [--fix]`: what crashes and hand edits left behind; repair what is safe."""

from __future__ import annotations

import click

from gitdag.cli._common import echo_json, open_store


@click.command()
@click.option("--fix", "do_fix", is_flag=True, help="Make the repairs that are safe.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def doctor(do_fix: bool, as_json: bool) -> None:
    """Check the repository: state branch, locks, orphaned runners, worktrees, target, objects.

    Prints each problem with the command that repairs it; --fix makes the safe repairs.
    Exit 0 when nothing is left to repair, 1 otherwise.
    """
    from gitdag.doctor import examine, repair

    with open_store() as store:
        report = examine(store)
        if do_fix:
            report = repair(report)
    if as_json:
        echo_json({"supervisor": report.supervisor, "clone": report.context,
                   "findings": [f.as_data() for f in report.findings]})  # fmt: skip
    else:
        if report.context:
            click.echo(report.context)
        if report.supervisor:
            click.echo(f"a supervisor is running ({report.supervisor}): repairs of worktrees, "
                       "runners and the merge queue wait until it stops")  # fmt: skip
        for finding in report.findings:
            if finding.fixed is not None:
                click.echo(f"fixed    [{finding.check}] {finding.problem}")
                click.echo(f"         -> {finding.fixed}")
                continue
            tag = "fixable" if finding.fix is not None else "problem"
            click.echo(f"{tag:<8} [{finding.check}] {finding.problem}")
            click.echo(f"         repair: {finding.repair}")
        left = len(report.remaining)
        fixable = sum(1 for f in report.remaining if f.fix is not None)
        if not report.findings:
            click.echo("ok: nothing to repair")
        elif left:
            hint = ""
            if fixable and not do_fix:
                hint = f" ({fixable} of them with `gitdag doctor --fix`)"
            click.echo(f"{left} problem(s) left{hint}")
        else:
            click.echo("all repaired")
    raise SystemExit(1 if report.remaining else 0)


def register(group: click.Group) -> None:
    group.add_command(doctor)
