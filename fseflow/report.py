"""What a run prints: the progress bar and the readable summary (rich)."""
from __future__ import annotations

import sys
from functools import cache
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress as _RichProgress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fseflow.processors.tables import read_table


@cache
def console() -> Console:
    return Console(stderr=True)


class Progress:
    """A files progress bar, or nothing when disabled (tests, --quiet, no terminal)."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.enabled = enabled
        self._bar = _RichProgress(TextColumn("liquidating"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
                                  TimeElapsedColumn(), console=console(), disable=not enabled)
        self._task = self._bar.add_task("files", total=total)

    def __enter__(self) -> "Progress":
        self._bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._bar.__exit__(*exc)

    def advance(self, _: Any = None) -> None:
        self._bar.advance(self._task)


def euros(cents: int) -> str:
    """Cents as euros for display, from integers (never through a float)."""
    sign, cents = ("-" if cents < 0 else ""), abs(int(cents))
    return f"{sign}{cents // 100:,}.{cents % 100:02d} €".replace(",", " ")


def print_summary(s: Any, out: Path | None = None) -> None:
    c = console()
    labels = {r["code"]: r["label"] for r in read_table("reject_codes")}
    total_s = s.seconds.get("total", 0.0) or 1e-9
    t = Table(title="fseflow — liquidation summary", show_header=False)
    t.add_row("files (refused)", f"{s.files:,} ({s.files_refused:,})")
    t.add_row("lots (refused)", f"{s.lots:,} ({s.lots_refused:,})")
    t.add_row("invoices paid / rejected", f"{s.invoices_paid:,} / {s.invoices_rejected:,}")
    t.add_row("lines", f"{s.lines:,}")
    for budget in ("AMO", "APIAS", "SIG"):
        t.add_row(f"paid, budget {budget}", euros(s.paid_by_budget.get(budget, 0)))
    for payee in ("ps", "insured"):
        t.add_row(f"paid to {'PS (tiers payant)' if payee == 'ps' else 'insured'}", euros(s.paid_by_payee.get(payee, 0)))
    t.add_row("PF/franchise debts created", euros(s.debt_cents))
    secs = s.seconds
    stages = ", ".join(f"{k} {secs[k]:.1f}" for k in ("load", "decode", "kernels", "records") if k in secs)
    t.add_row("time", f"{total_s:.1f} s" + (f" ({stages})" if stages else ""))
    t.add_row("throughput", f"{s.invoices / total_s:,.0f} invoices/s, {s.bytes / total_s / 1e6:.1f} MB/s")
    if out is not None:
        t.add_row("décomptes", str(out))
    c.print(t)
    if s.rejects:
        r = Table(title="rejects by code (line controls count once per line)")
        r.add_column("code")
        r.add_column("count", justify="right")
        r.add_column("label")
        for code, n in sorted(s.rejects.items(), key=lambda kv: -kv[1]):
            r.add_row(code, f"{n:,}", labels.get(code, ""))
        c.print(r)
    if not sys.stderr.isatty():
        c.file.flush()


def print_truth(score: Any) -> None:
    """The anomalies the generator injected, against what liquidation found."""
    c = console()
    verdict = "[green]exact[/]" if score.exact else "[red]MISMATCH[/]"
    c.print(f"injected anomalies found with their code: {score.found:,}/{score.expected:,} "
            f"(recall {score.recall:.1%}); clean invoices rejected: {sum(score.false_rejects.values()):,} "
            f"of {score.clean_invoices:,} — {verdict}")
    for label, counter in (("missed", score.missed), ("false rejects", score.false_rejects), ("extra codes", score.extra)):
        if counter:
            c.print(f"  {label}: " + ", ".join(f"{k} × {v}" for k, v in counter.most_common()))


def print_payments(runs: list[Any], returns: list[Any] = (), reconciliations: list[Any] = ()) -> None:  # type: ignore[assignment]
    """Cut-offs (SEPA file per budget and day), the returns to PS and the reconciliation verdicts."""
    c = console()
    if runs:
        t = Table(title="payments: one SEPA pain.001.001.09 file per budget and cut-off")
        for col in ("cut-off", "budget", "execution", "transfers", "amount", "held (payees)", "debts (insured)",
                    "penalties", "file"):
            t.add_column(col, justify="left" if col in ("cut-off", "budget", "execution", "file") else "right")
        for r in runs:
            if not (r.transfers or r.held or r.debts):
                continue
            t.add_row(str(r.day), r.budget, str(r.execution_date), f"{r.transfers:,}", euros(r.amount_cents),
                      f"{euros(r.held_cents)} ({r.held:,})", f"{euros(r.debt_cents)} ({r.debts:,})", f"{r.penalties:,}",
                      (r.file.name if r.file else "none: nothing to pay") + (" (re-run: same file)" if r.rerun else ""))
        c.print(t)
    for ret in returns:
        c.print(f"returns to PS for {ret.day}: {ret.files:,} NOEMIE files, {ret.invoices:,} invoices reported, "
                f"transfers announced {euros(ret.transfers_cents)} ({ret.folder})")
    for rec in reconciliations:
        if rec.holds:
            paid = sum(f["paid"] for f in rec.budgets.values())
            debts = sum(f["debts"] for f in rec.budgets.values())
            held = sum(f["held"] for f in rec.budgets.values())
            c.print(f"[green]reconciliation of {rec.day} holds[/] (P1–P8, per budget, to the cent): paid "
                    f"{euros(paid)}, carried: held {euros(held)}, debts {euros(debts)}")
        else:
            c.print(f"[red]reconciliation of {rec.day} FAILS[/]: {rec.failure}")


def print_delays(r: Any) -> None:
    c = console()
    t = Table(title=f"tiers-payant payment delays, received {r.start} → {r.end}", show_header=False)
    t.add_row("invoices paid", f"{r.invoices:,} (and {r.pending:,} not paid yet)")
    t.add_row("mean delay", "—" if r.mean_wd is None else f"{r.mean_wd:.2f} working days (CNMSS 2023: 1.2)")
    share = r.share_within
    t.add_row(f"within {r.target_wd} working days", "—" if share is None else f"{r.within_target:,} ({share:.1%})")
    t.add_row("late, day 8–9 / day 10+", f"{r.late_8_9:,} / {r.late_10:,}")
    t.add_row("penalties", euros(r.penalty_cents))
    c.print(t)


def _why(explanation: list[dict[str, Any]]) -> str:
    def value(v: Any) -> str:
        return ", ".join(f"{k} {x}" for k, x in v.items()) if isinstance(v, dict) else str(v)
    return "; ".join(f"{e['indicator']}: {e['contribution']}" + (f" ({value(e['value'])}" if "value" in e else "")
                     + (f", z {e['z']}" if e.get("z") is not None else "") + (")" if "value" in e else "")
                     for e in explanation)


def print_beneficiary_alerts(alerts: list[Any], when: Any = None) -> None:
    """Beneficiary-day alerts, highest score first: the beneficiary's pseudonymous row in the
    loaded directory (no NIR), the care date, and the indicators that weigh most."""
    c = console()
    if not alerts:
        c.print("fraud: no beneficiary-day reached the alert score")
        return
    t = Table(title=f"fraud alerts{' of ' + str(when) if when else ''}: beneficiary-days (review requests)")
    for col in ("beneficiary row", "day", "score", "at stake", "why (indicator: contribution, value)"):
        t.add_column(col, justify="right" if col in ("score", "at stake") else "left")
    for a in alerts:
        t.add_row(str(a["bene"]), str(a["day"]), f"{a['score']:.3f}", euros(a["at_stake_cents"]), _why(a["explanation"]))
    c.print(t)


def print_alerts(alerts: list[Any], when: Any = None) -> None:
    """Fraud alerts (practitioner-months, or practitioner-days): highest score first, with the
    indicators that weigh most (an alert is a request for review, never a conclusion)."""
    c = console()
    if not alerts:
        c.print("fraud: no practitioner reached the alert score")
        return
    grain = "month" if "month" in alerts[0] else "day"
    t = Table(title=f"fraud alerts{' of ' + str(when) if when else ''}: highest scores (review requests)")
    for col in ("practitioner", grain, "billing PS", "spec.", "score", "at stake",
                "why (indicator: contribution, value, z against peers)"):
        t.add_column(col, justify="right" if col in ("score", "at stake") else "left")
    for a in alerts:
        why = _why(a["explanation"])
        at = a[grain]
        t.add_row(str(a["practitioner"]), f"{at:%Y-%m}" if grain == "month" else str(at), str(a["ps"]),
                  f"{a['speciality']:02d}", f"{a['score']:.3f}", euros(a["at_stake_cents"]), why)
    c.print(t)
