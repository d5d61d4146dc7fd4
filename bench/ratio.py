#!/usr/bin/env python3
"""ratio.py -- read wrk reports and print aside's throughput as a ratio of nginx's.

Used by bench/http_vs_nginx.sh; standard library only.

  ratio.py run REPORT
      one line about one wrk report (req/s, GB/s, p99, errors).

  ratio.py table --file NAME:LABEL:TARGET ... RUN ...
      RUN is SERVER:NAME:REPORT, one per wrk run, in the order they ran. For each
      file NAME, prints every run of each server, the median of each server's runs,
      and the ratio aside/nginx of the median requests per second against TARGET.
      Exits 1 if a report cannot be read or shows an error (socket errors,
      non-2xx/3xx responses), 0 otherwise: the targets are reported, not asserted.

wrk prints sizes in binary units (1KB = 1024 B); they are converted to bytes here.
GB/s in the output means 10^9 bytes per second, as read by wrk (headers included).
"""

import argparse
import re
import statistics
import sys

BINARY = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}
TIME_US = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class Report:
    """The numbers of one wrk run, and what went wrong in it."""

    def __init__(self, path):
        self.path = path
        self.errors = []
        self.req_per_s = None
        self.bytes_per_s = None
        self.p99_s = None
        self.requests = None
        self.non_2xx_3xx = 0
        self.socket_errors = 0
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError as e:
            self.errors.append(f"cannot read wrk report: {e.strerror}")
            return
        self._parse(text)

    def _parse(self, text):
        m = re.search(r"^Requests/sec:\s*([\d.]+)\s*$", text, re.M)
        if m:
            self.req_per_s = float(m.group(1))
        m = re.search(r"^Transfer/sec:\s*([\d.]+)([KMGTP]?)B\s*$", text, re.M)
        if m:
            self.bytes_per_s = float(m.group(1)) * BINARY[m.group(2)]
        m = re.search(r"^\s*99(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M)
        if m:
            self.p99_s = float(m.group(1)) * TIME_US[m.group(2)]
        m = re.search(r"^\s*(\d+) requests in ", text, re.M)
        if m:
            self.requests = int(m.group(1))
        m = re.search(r"^\s*Non-2xx or 3xx responses:\s*(\d+)", text, re.M)
        if m:
            self.non_2xx_3xx = int(m.group(1))
        m = re.search(
            r"^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text, re.M
        )
        if m:
            self.socket_errors = sum(int(g) for g in m.groups())
            if self.socket_errors:
                self.errors.append("socket errors: " + m.group(0).split(":", 1)[1].strip())
        if self.non_2xx_3xx:
            self.errors.append(f"{self.non_2xx_3xx} non-2xx or 3xx responses")
        missing = [
            name
            for name, value in (
                ("Requests/sec", self.req_per_s),
                ("Transfer/sec", self.bytes_per_s),
                ("99% latency", self.p99_s),
            )
            if value is None
        ]
        if missing:
            self.errors.append("no " + ", ".join(missing) + " in the wrk report")
        elif not self.requests:
            self.errors.append("no request completed")

    @property
    def ok(self):
        return not self.errors


def fmt_time(seconds):
    if seconds is None:
        return "?"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_rate(req_per_s):
    return "?" if req_per_s is None else f"{req_per_s:,.0f}"


def fmt_gb(bytes_per_s):
    return "?" if bytes_per_s is None else f"{bytes_per_s / 1e9:.3f}"


def summary(report):
    line = (
        f"{fmt_rate(report.req_per_s)} req/s, {fmt_gb(report.bytes_per_s)} GB/s, "
        f"p99 {fmt_time(report.p99_s)}"
    )
    if report.errors:
        line += "  ERROR: " + "; ".join(report.errors)
    return line


def cmd_run(args):
    report = Report(args.report)
    print(summary(report))
    return 0 if report.ok else 1


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def cmd_table(args):
    files = []  # (name, label, target)
    for spec in args.file:
        name, label, target = spec.split(":", 2)
        files.append((name, label, float(target)))
    runs = {}  # (server, name) -> [Report]
    servers = []
    for spec in args.runs:
        server, name, path = spec.split(":", 2)
        if server not in servers:
            servers.append(server)
        runs.setdefault((server, name), []).append(Report(path))

    failed = False
    width = max(len(s) for s in servers) if servers else 5
    print(
        f"  {'':<{width}}  {'req/s, each run':>26}  {'median req/s':>12}  "
        f"{'GB/s':>7}  {'worst p99':>9}"
    )
    for name, label, target in files:
        print(f"{label} ({name})")
        medians = {}
        for server in servers:
            reports = runs.get((server, name), [])
            each = " / ".join(fmt_rate(r.req_per_s) for r in reports) or "-"
            med = median(r.req_per_s for r in reports)
            med_bytes = median(r.bytes_per_s for r in reports)
            p99s = [r.p99_s for r in reports if r.p99_s is not None]
            worst = max(p99s) if p99s else None
            medians[server] = med
            print(
                f"  {server:<{width}}  {each:>26}  {fmt_rate(med):>12}  "
                f"{fmt_gb(med_bytes):>7}  {fmt_time(worst):>9}"
            )
            for r in reports:
                if r.errors:
                    failed = True
                    print(f"  ERROR: {server} {name}: " + "; ".join(r.errors))
            if not reports:
                failed = True
                print(f"  ERROR: {server} {name}: no run")
        aside, nginx = medians.get("aside"), medians.get("nginx")
        if aside and nginx:
            ratio = aside / nginx
            per_round = [
                a.req_per_s / n.req_per_s
                for a, n in zip(runs.get(("aside", name), []), runs.get(("nginx", name), []))
                if a.req_per_s and n.req_per_s
            ]
            spread = ""
            if len(per_round) > 1:
                spread = " (each round: " + ", ".join(f"{r:.2f}x" for r in per_round) + ")"
            if ratio >= target:
                verdict = "met"
            else:
                verdict = f"missed by {(1 - ratio / target) * 100:.1f}%"
            print(
                f"  aside/nginx  {ratio:.2f}x{spread}   target >= {target:.2f}x: {verdict}"
            )
        else:
            print(f"  aside/nginx  ?   target >= {target:.2f}x: not measured")
    return 1 if failed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run")
    p.add_argument("report")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("table")
    p.add_argument("--file", action="append", default=[], metavar="NAME:LABEL:TARGET")
    p.add_argument("runs", nargs="*", metavar="SERVER:NAME:REPORT")
    p.set_defaults(func=cmd_table)
    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
