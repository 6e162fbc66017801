"""`liaison publish` and `liaison simulate`."""

from __future__ import annotations

import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import typer

import schemas

from core.topics import topic_for
from producers.publisher import Publisher, PublishError
from producers.simulate.partner_run import partner_command
from producers.validate import validate_lines


def publish(type_name: str = typer.Argument(..., help="message type, e.g. AirTrack"),
            file: Path = typer.Option(None, "--file", "-f", help="NDJSON file (default: stdin)"),
            skip_invalid: bool = typer.Option(False, "--skip-invalid",
                                              help="publish the valid lines and report the rest")) -> None:
    """Validate every line of an NDJSON file of TYPE, then publish it in one transaction. By default any bad line
    publishes nothing; a failure while producing publishes nothing either (the transaction is aborted)."""
    if type_name not in schemas.MESSAGE_TYPES:
        typer.echo(f"error: unknown message type {type_name!r}; one of {', '.join(schemas.MESSAGE_TYPES)}", err=True)
        raise typer.Exit(2)
    source = str(file) if file else "<stdin>"
    try:
        lines = file.read_text().splitlines() if file else sys.stdin.read().splitlines()
    except OSError as e:
        typer.echo(f"error: cannot read {source}: {e.strerror}", err=True)
        raise typer.Exit(2)
    report = validate_lines(type_name, lines)
    for err in report.errors:
        typer.echo(f"{source}:{err}", err=True)
    if report.errors and not skip_invalid:
        typer.echo(f"rejected {source}: {len(report.errors)} invalid line(s); nothing published "
                   f"(use --skip-invalid to publish the {len(report.valid)} valid line(s))", err=True)
        raise typer.Exit(1)
    # One type, so one topic, one component, one producer principal: one transaction, committed only when every
    # record was produced and acknowledged; any failure aborts it and nothing becomes visible to read_committed
    # consumers (the forwarder). Also with --skip-invalid: the valid lines go together or not at all.
    try:
        with Publisher(transactional=True) as pub:
            for _, model in report.valid:
                pub.publish(model)
    except PublishError as e:
        typer.echo(f"error: {e}", err=True)
        typer.echo(f"rejected {source}: the transaction was aborted; nothing published", err=True)
        raise typer.Exit(1)
    typer.echo(f"published {pub.committed[type_name]} {type_name} record(s) to {topic_for(type_name)}"
               + (f"; rejected {len(report.errors)} line(s)" if report.errors else ""))
    if report.errors:
        raise typer.Exit(1)


COMPONENTS = {"naval": {"naval"}, "air": {"air"}, "intel": {"intel"}, "all": {"naval", "air", "intel"}}


def run_simulation(components: set[str], rate: float, duration: float, seed: int, sentinels: bool = False,
                   paced: bool = True, publisher: Publisher | None = None, stop=None) -> tuple[Counter, float]:
    """Publish simulated events at `rate`/s for `duration` s; returns (delivered per type, elapsed s)."""
    from producers.simulate import Simulator

    sim = Simulator(components, seed=seed, start=datetime.now(timezone.utc), sentinels=sentinels)
    pub = publisher or Publisher()
    t0 = time.monotonic()
    for offset, model in sim.events(rate, duration):
        if stop is not None and stop.is_set():
            break
        if paced:
            delay = t0 + offset - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        pub.publish(model)
    pub.flush()
    return pub.delivered, time.monotonic() - t0


def simulate(component: str = typer.Argument(..., help="naval, air, intel or all"),
             rate: float = typer.Option(100.0, help="events per second, all components together"),
             duration: float = typer.Option(10.0, help="seconds"),
             seed: int = typer.Option(1, help="same seed, same events"),
             sentinels: bool = typer.Option(False, help="plant SENTINEL-... values in fields partners must not see"),
             unpaced: bool = typer.Option(False, "--unpaced", help="publish as fast as possible")) -> None:
    """Run the component simulators against the broker."""
    if component not in COMPONENTS:
        typer.echo(f"error: unknown component {component!r}; one of {', '.join(COMPONENTS)}", err=True)
        raise typer.Exit(2)
    try:
        delivered, elapsed = run_simulation(COMPONENTS[component], rate, duration, seed, sentinels, not unpaced)
    except PublishError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1)
    total = sum(delivered.values())
    for name in schemas.MESSAGE_TYPES:
        if delivered[name]:
            typer.echo(f"{name:22} {delivered[name]:8d}  -> {topic_for(name)}")
    typer.echo(f"{'total':22} {total:8d}  in {elapsed:.1f}s ({total / max(elapsed, 1e-9):.0f}/s)")


# `liaison simulate <component>` (naval, air, intel, all: our components, as before) and `liaison simulate partner`
# (a partner publishing to us on its inbound topics): one sub-command each, the component ones with the options of
# `simulate` above.
simulate_app = typer.Typer(no_args_is_help=True, add_completion=False,
                           help="Run the simulators against the broker: our components (naval, air, intel, all) or "
                                "a partner publishing to us (partner --partner RUS).")


def _component_command(name: str):
    def command(rate: float = typer.Option(100.0, help="events per second, all components together"),
                duration: float = typer.Option(10.0, help="seconds"),
                seed: int = typer.Option(1, help="same seed, same events"),
                sentinels: bool = typer.Option(False, help="plant SENTINEL-... values in fields partners must not "
                                                           "see"),
                unpaced: bool = typer.Option(False, "--unpaced", help="publish as fast as possible")) -> None:
        simulate(name, rate, duration, seed, sentinels, unpaced)

    command.__doc__ = (f"Run the {name} component simulator against the broker." if name != "all"
                       else "Run the naval, air and intel simulators together against the broker.")
    return command


for _name in COMPONENTS:
    simulate_app.command(_name)(_component_command(_name))


simulate_app.command("partner")(partner_command)
