"""SIP call throughput without media: SIPp UAC -> callbridge -> SIPp UAS, and the same load
through Kamailio as a stateful proxy, on the same machine in the same run (not run in CI).

    .venv/bin/python bench/sip.py            # 30 s per step; several minutes
    .venv/bin/python bench/sip.py --quick    # 5 s per step, a smoke run
    .venv/bin/python bench/sip.py --rates 100,300 --skip-kamailio

Needs ``sipp`` (SIPp 3.6) and, for the reference figure, ``kamailio`` on the PATH; it installs
nothing: ``apt-get install -y sip-tester kamailio`` (Debian; the Kamailio service is not started,
this script runs its own instance from ``bench/kamailio.cfg``).

The server under test runs pinned to CPU 0 (``taskset``), the two SIPp instances to CPU 1:

callbridge
    ``callbridge serve --demo --switch sip`` with its own data directory (SQLite, durable: every
    call's documents, events and its CDR are committed as in production), random free ports and
    MD5 digests (SIPp 3.6 cannot do SHA-256). The UAS first registers its own port as demo phone
    112 (``sipp/register.xml``, digest auth), then answers there. The UAC calls 112 at
    callbridge: callbridge routes the inbound call to the demo tenant, rings 112's registered
    contact (the UAS), bridges the two legs when it answers (allocating an RTP port per leg;
    SIPp sends no RTP) and answers the UAC; the UAC hangs up after ``--hold-ms``, and callbridge
    BYEs the UAS.
Kamailio
    ``bench/kamailio.cfg``: tm/sl/rr/maxfwd/pv/siputils only; every INVITE is record-routed and
    relayed statefully (``t_relay``) to the UAS, so ACK and BYE pass through it too.

The rate is stepped (50, 100, 200, 300, 350, 400, 450, 500, 600, 800 ... calls/s); each step offers
``rate x duration`` calls open-loop (``-r``). A step passes when every call succeeded on both
SIPp sides (no failed call of any kind: timeout, unexpected message, retransmission limit) and
the INVITE->200 p99 is under 200 ms. INVITE->200 is SIPp response-time counter 1, started when
the INVITE is first sent and stopped when its 200 arrives (``sipp/uac.xml``), dumped for every
call (``-trace_rtt``); the percentiles are computed here from all of them. A failing step is run
once more (``--retries``) because the machine is shared; the stepping stops at the first step
that fails again. Kamailio's stepping starts at the last rate callbridge passed (lower rates
would only pass too) unless ``--kamailio-from-bottom``.

Printed: one line per step (with the 1-minute load average before it and the server's CPU use
over the step), the highest passing rate of each, their ratio, and one JSON line last.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
SCENARIOS = BENCH / "sipp"
HOST = "127.0.0.1"
SERVER_CPU = 0  # --server-cpu
LOAD_CPU = 1  # --load-cpu
SATURATED = 0.8  # server CPU use below which a failing step is blamed on the load generator
RATES = [50, 100, 200, 300, 350, 400, 450, 500, 600, 800, 1000, 1500, 2000, 2500, 3000, 4000]
P99_TARGET_MS = 200.0
TARGET_CPS = 300
EXTENSION = "112"
INSTALL_HINT = "apt-get install -y sip-tester kamailio"


# ---------------------------------------------------------------------- helpers


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def pinned(cpu: int) -> list[str]:
    """A ``taskset`` prefix for ``cpu``, or nothing on a one-core machine or without taskset."""
    if (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", str(cpu)]


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) of every live process in process group ``pgid``."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields[2] is the process group
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the process group ``proc`` leads, then SIGKILL if it lingers."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    with contextlib.suppress(
        ProcessLookupError, PermissionError
    ):  # children that outlived the leader (Kamailio's workers)
        os.killpg(proc.pid, signal.SIGKILL)


def first_errors(path: Path) -> str:
    """The first failure SIPp logged (its error log also notes every expected recv timeout)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    events = [
        e.strip().replace("\n", " / ")
        for e in re.split(r"\n(?=\d{4}-\d\d-\d\d\t)", text)  # each event starts with its date
        if e.strip() and "jumping to label" not in e and "following events" not in e
    ]
    return events[0] if events else ""


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ---------------------------------------------------------------------- SIPp


def sipp_common(control_port: int, workdir: Path, name: str) -> list[str]:
    return [
        "-i",
        HOST,
        "-mi",
        HOST,
        "-ci",
        HOST,
        "-cp",
        str(control_port),
        "-nostdin",
        "-trace_err",
        "-error_file",
        str(workdir / f"{name}_errors.log"),
        "-trace_stat",
        "-stf",
        str(workdir / f"{name}_stat.csv"),
        "-fd",
        "1",
        "-buff_size",
        str(4 * 1024 * 1024),
        "-max_recv_loops",
        "10000",
        "-max_sched_loops",
        "10000",
    ]


def last_stats(path: Path) -> dict[str, str]:
    """The last row of a SIPp ``-trace_stat`` file (counters), or {}."""
    try:
        with path.open(newline="") as f:
            rows = list(csv.reader(f, delimiter=";"))
    except OSError:
        return {}
    if len(rows) < 2:
        return {}
    header = rows[0]
    return {header[i]: value for i, value in enumerate(rows[-1]) if i < len(header)}


def counter(stats: dict[str, str], name: str) -> int:
    try:
        return int(stats.get(name, "0") or 0)
    except ValueError:
        return 0


def register(target: str, port: int, username: str, password: str, workdir: Path) -> None:
    """Register ``HOST:port`` (the UAS's own port) as ``username`` with digest auth."""
    out = workdir / "register.out"
    cmd = [
        "sipp",
        "-sf",
        str(SCENARIOS / "register.xml"),
        target,
        "-p",
        str(port),
        "-m",
        "1",
        "-au",
        username,
        "-ap",
        password,
        "-key",
        "user",
        username,
        "-timeout",
        "10s",
        "-timeout_error",
        *sipp_common(free_udp_port(), workdir, "register"),
    ]
    with out.open("wb") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=workdir, timeout=30)
    if rc.returncode != 0:
        raise RuntimeError(f"REGISTER failed (sipp exit {rc.returncode}):\n{tail(out)}")


# ---------------------------------------------------------------------- one step


@dataclass
class Step:
    rate: int
    calls: int
    load1: float
    ok: int = 0
    failed: int = 0
    uas_ok: int = 0
    uas_failed: int = 0
    retransmissions: int = 0
    samples: int = 0
    p50_ms: float = math.nan
    p90_ms: float = math.nan
    p99_ms: float = math.nan
    max_ms: float = math.nan
    answered_per_s: float = 0.0
    server_cpu: float = 0.0  # the server's CPU use while the load is offered, 1.0 = one core
    cpu_ms_per_call: float = 0.0  # the server's CPU time per offered call
    passed: bool = False
    note: str = ""

    def line(self) -> str:
        verdict = "pass" if self.passed else "FAIL"
        return (
            f"  {self.rate:5d}/s  calls {self.ok:6d}/{self.calls:<6d} failed {self.failed:4d}"
            f" (uas {self.uas_failed})  retrans {self.retransmissions:5d}"
            f"  INVITE->200 p50 {self.p50_ms:6.1f} p90 {self.p90_ms:6.1f}"
            f" p99 {self.p99_ms:6.1f} max {self.max_ms:6.1f} ms"
            f"  answered {self.answered_per_s:6.1f}/s  server CPU {self.server_cpu:4.2f}"
            f" ({self.cpu_ms_per_call:.2f} ms/call)"
            f"  load {self.load1:4.2f}  {verdict}{'  ' + self.note if self.note else ''}"
        )


@dataclass
class Target:
    """Where the UAC sends its INVITEs, and how to get a UAS reachable behind it."""

    name: str
    address: str  # HOST:PORT for the UAC
    uas_port: int
    pgid: int  # the server's process group (CPU accounting)
    credentials: tuple[str, str] | None = None  # register the UAS first (callbridge)


def run_step(
    target: Target, rate: int, duration: float, hold_ms: int, workdir: Path, attempt: int
) -> Step:
    calls = max(1, round(rate * duration))
    step_dir = workdir / f"{target.name}-{rate}-{attempt}"
    step_dir.mkdir(parents=True)
    step = Step(rate, calls, load1())
    guard = int(duration + hold_ms / 1000 + 60)
    uas_cmd = [
        *pinned(LOAD_CPU),
        "sipp",
        "-sf",
        str(SCENARIOS / "uas.xml"),
        "-p",
        str(target.uas_port),
        "-m",
        str(calls),
        "-timeout",
        f"{guard + 15}s",
        *sipp_common(free_udp_port(), step_dir, "uas"),
    ]
    uac_cmd = [
        *pinned(LOAD_CPU),
        "sipp",
        "-sf",
        str(SCENARIOS / "uac.xml"),
        target.address,
        "-s",
        EXTENSION,
        "-p",
        str(free_udp_port()),
        "-r",
        str(rate),
        "-rp",
        "1000",
        "-m",
        str(calls),
        "-l",
        str(max(1000, rate * 30)),  # open loop: never throttle on open calls
        "-d",
        str(hold_ms),
        "-recv_timeout",
        "10000",
        "-timeout",
        f"{guard}s",
        "-timeout_error",
        "-trace_rtt",
        "-rtt_freq",
        "1",  # dumped per call: the remainder of a larger batch is lost at exit
        *sipp_common(free_udp_port(), step_dir, "uac"),
    ]
    uas_out = (step_dir / "uas.out").open("wb")
    uac_out = (step_dir / "uac.out").open("wb")
    uas = subprocess.Popen(
        uas_cmd, stdout=uas_out, stderr=subprocess.STDOUT, cwd=step_dir, start_new_session=True
    )
    uac: subprocess.Popen[bytes] | None = None
    try:
        time.sleep(0.5)  # let the UAS bind
        if uas.poll() is not None:
            raise RuntimeError(f"the SIPp UAS exited at once:\n{tail(step_dir / 'uas.out')}")
        cpu0, t0 = group_cpu(target.pgid), time.monotonic()
        uac = subprocess.Popen(uac_cmd, stdout=uac_out, stderr=subprocess.STDOUT, cwd=step_dir)
        # the server's CPU use while the load is offered (the first hold_ms, when calls only
        # start, and the last, when they only end, left out), and per call over the whole step
        hold = hold_ms / 1000
        time.sleep(hold)
        cpu1, t1 = group_cpu(target.pgid), time.monotonic()
        with contextlib.suppress(subprocess.TimeoutExpired):
            uac.wait(max(0.0, t0 + duration - t1))
        cpu2, t2 = group_cpu(target.pgid), time.monotonic()
        try:
            uac.wait(guard + 30)
        except subprocess.TimeoutExpired:
            uac.kill()
            uac.wait()
        used = group_cpu(target.pgid) - cpu0
        step.server_cpu = round((cpu2 - cpu1) / (t2 - t1), 2) if t2 > t1 else 0.0
        step.cpu_ms_per_call = round(used * 1000 / calls, 3)
        try:
            uas.wait(15)
        except subprocess.TimeoutExpired:
            step.note = "UAS did not see every call"
    finally:
        if uac is not None and uac.poll() is None:  # interrupted
            uac.kill()
            uac.wait()
        stop_group(uas, 5)
        uas_out.close()
        uac_out.close()
    uac_stats = last_stats(step_dir / "uac_stat.csv")
    uas_stats = last_stats(step_dir / "uas_stat.csv")
    step.ok = counter(uac_stats, "SuccessfulCall(C)")
    # a call SIPp never finished counts as failed too
    step.failed = max(counter(uac_stats, "FailedCall(C)"), calls - step.ok)
    step.uas_ok = counter(uas_stats, "SuccessfulCall(C)")
    step.uas_failed = max(counter(uas_stats, "FailedCall(C)"), calls - step.uas_ok)
    step.retransmissions = counter(uac_stats, "Retransmissions(C)") + counter(
        uas_stats, "Retransmissions(C)"
    )
    samples: list[float] = []
    stamps: list[float] = []
    for path in step_dir.glob("uac_*_rtt.csv"):
        with path.open(newline="") as f:
            for row in csv.reader(f, delimiter=";"):
                if len(row) >= 3 and row[2].strip() == "1":
                    try:
                        stamps.append(float(row[0]))
                        samples.append(float(row[1]))
                    except ValueError:
                        continue
    step.samples = len(samples)
    step.p50_ms, step.p90_ms = pct(samples, 0.50), pct(samples, 0.90)
    step.p99_ms, step.max_ms = pct(samples, 0.99), pct(samples, 1.0)
    if len(stamps) > 1 and max(stamps) > min(stamps):
        step.answered_per_s = round((len(stamps) - 1) / ((max(stamps) - min(stamps)) / 1000), 1)
    if uac.returncode != 0 and not step.note:
        step.note = f"sipp exit {uac.returncode}"
    if step.samples < step.ok and not step.note:
        step.note = f"only {step.samples} response times for {step.ok} calls"
    step.passed = (
        uac.returncode == 0
        and step.ok == calls
        and step.failed == 0
        and step.uas_failed == 0
        and step.samples >= calls
        and step.p99_ms < P99_TARGET_MS
    )
    if not step.passed:
        errors = first_errors(step_dir / "uac_errors.log") or first_errors(
            step_dir / "uas_errors.log"
        )
        if errors:
            step.note += " | " + errors[:300]
    return step


@dataclass
class Result:
    name: str
    steps: list[Step] = field(default_factory=list)
    max_rate: int = 0
    best: Step | None = None
    capped: bool = False  # the figure is a lower bound (see limit)
    limit: str = ""  # what stopped the stepping


def step_through(
    target: Target,
    rates: Sequence[int],
    duration: float,
    hold_ms: int,
    retries: int,
    workdir: Path,
    check: Any,
) -> Result:
    result = Result(target.name)
    print(f"{target.name}: {len(rates)} step(s) of {duration:g} s, calls held {hold_ms} ms")
    for rate in rates:
        passed = False
        for attempt in range(retries + 1):
            check()
            step = run_step(target, rate, duration, hold_ms, workdir, attempt)
            result.steps.append(step)
            print(step.line(), flush=True)
            time.sleep(2.0)  # let the last calls' transactions drain
            if step.passed:
                passed = True
                result.max_rate, result.best = rate, step
                break
        if not passed:
            failing = result.steps[-1]
            if failing.server_cpu < SATURATED:
                # the server did not use its whole CPU: SIPp (both sides on one core) was the
                # limit, or another process took part of the server's CPU (a shared machine)
                result.capped = True
                result.limit = (
                    f"not the server's CPU use ({failing.server_cpu:.2f} at {rate}/s): the load"
                    " generator, or another process on the server's CPU"
                )
            else:
                result.limit = f"server (CPU {failing.server_cpu:.2f} at {rate}/s)"
            break
    else:
        result.capped = bool(rates) and result.max_rate == rates[-1]
        result.limit = "top step passed"
    return result


# ---------------------------------------------------------------------- the servers


def callbridge_command() -> list[str]:
    script = Path(sys.executable).with_name("callbridge")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from callbridge.cli import main; main()"]


def start_callbridge(workdir: Path, command: list[str]) -> tuple[subprocess.Popen[bytes], Target]:
    data = workdir / "callbridge-data"
    log = workdir / "callbridge.log"
    out = workdir / "callbridge.out"
    base = random.randrange(30000, 56000, 1000)
    env = dict(os.environ)
    env.update(
        {
            # SIPp 3.6 only does MD5 and gives up when SHA-256 is offered at all (settings.py)
            "CALLBRIDGE_SIP_ALLOW_MD5": "true",
            "CALLBRIDGE_SIP_DIGEST_ALGORITHMS": "MD5",
        }
    )
    cmd = [
        *pinned(SERVER_CPU),
        *command,
        "serve",
        "--demo",
        "--switch",
        "sip",
        "--host",
        HOST,
        "--port",
        "0",
        "--sip-host",
        HOST,
        "--sip-port",
        "0",
        "--data-dir",
        str(data),
        "--rtp-port-min",
        str(base),
        "--rtp-port-max",
        str(base + 8999),
        "--log-level",
        "warning",
    ]
    with out.open("wb") as stdout, log.open("wb") as stderr:
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, env=env, start_new_session=True)
    deadline = time.monotonic() + 90
    sip_address = None
    while time.monotonic() < deadline and sip_address is None:
        if proc.poll() is not None:
            raise RuntimeError(f"callbridge exited ({proc.returncode}):\n{tail(log)}")
        for line in out.read_text(errors="replace").splitlines():
            if line.startswith("callbridge SIP on udp+tcp "):
                sip_address = line.rsplit(" ", 1)[1]
        time.sleep(0.1)
    creds_file = data / "demo-credentials.json"
    while time.monotonic() < deadline and sip_address is not None:
        if "demo credentials" in out.read_text(errors="replace"):
            break
        time.sleep(0.1)
    if sip_address is None or not creds_file.exists():
        stop_group(proc)
        raise RuntimeError(f"callbridge did not start:\n{tail(log)}")
    sip = json.loads(creds_file.read_text())["sip"]
    phone = next(p for p in sip["phones"] if p["extension"] == EXTENSION)
    target = Target(
        "callbridge",
        sip_address,
        free_udp_port(),
        proc.pid,
        (str(phone["username"]), str(phone["password"])),
    )
    return proc, target


def start_kamailio(workdir: Path, children: int) -> tuple[subprocess.Popen[bytes], Target]:
    run_dir = workdir / "kamailio"
    run_dir.mkdir()
    port, uas_port = free_udp_port(), free_udp_port()
    cfg = run_dir / "kamailio.cfg"
    cfg.write_text(
        (BENCH / "kamailio.cfg")
        .read_text()
        .replace("@LISTEN@", f"{HOST}:{port}")
        .replace("@UAS@", f"{HOST}:{uas_port}")
        .replace("@CHILDREN@", str(children))
    )
    log = workdir / "kamailio.log"
    cmd = [
        *pinned(SERVER_CPU),
        "kamailio",
        "-f",
        str(cfg),
        "-DD",
        "-E",
        "-m",
        "512",
        "-P",
        str(run_dir / "kamailio.pid"),
        "-Y",
        str(run_dir),
        "-w",
        str(run_dir),
    ]
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            cmd, stdout=stderr, stderr=subprocess.STDOUT, start_new_session=True
        )
    needle = f"{HOST.replace('127.0.0.1', '0100007F')}:{port:04X}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"kamailio exited ({proc.returncode}):\n{tail(log)}")
        if needle in Path("/proc/net/udp").read_text():
            break
        time.sleep(0.1)
    else:
        stop_group(proc)
        raise RuntimeError(f"kamailio did not start:\n{tail(log)}")
    time.sleep(1.0)  # its workers fork after the socket is bound
    return proc, Target("kamailio", f"{HOST}:{port}", uas_port, proc.pid)


# ---------------------------------------------------------------------- main


def parse_rates(text: str) -> list[int]:
    rates = sorted({int(r) for r in text.split(",") if r.strip()})
    if not rates or rates[0] <= 0:
        raise argparse.ArgumentTypeError("rates: positive integers, comma-separated")
    return rates


def main() -> int:
    global SERVER_CPU, LOAD_CPU
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 s per step (smoke run)")
    parser.add_argument("--duration", type=float, help="seconds per step (default 30)")
    parser.add_argument("--hold-ms", type=int, default=1000, help="call length (default 1000)")
    parser.add_argument("--rates", type=parse_rates, default=RATES, help="calls/s steps")
    parser.add_argument("--retries", type=int, default=1, help="re-runs of a failing step")
    parser.add_argument("--skip-callbridge", action="store_true")
    parser.add_argument("--skip-kamailio", action="store_true")
    parser.add_argument("--kamailio-from-bottom", action="store_true")
    parser.add_argument("--kamailio-children", type=int, default=2, help="UDP workers (2)")
    parser.add_argument("--server-cpu", type=int, default=SERVER_CPU, help="CPU of the server (0)")
    parser.add_argument("--load-cpu", type=int, default=LOAD_CPU, help="CPU of the two SIPps (1)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--callbridge-cmd",
        help="command that runs the callbridge CLI (default: the venv's callbridge), e.g. to run"
        " it under a profiler",
    )
    args = parser.parse_args()
    duration = args.duration or (5.0 if args.quick else 30.0)
    SERVER_CPU, LOAD_CPU = args.server_cpu, args.load_cpu

    if shutil.which("sipp") is None:
        print(f"sipp (SIPp) is not installed: {INSTALL_HINT}", file=sys.stderr)
        return 2
    if not args.skip_kamailio and shutil.which("kamailio") is None:
        print(f"kamailio is not installed ({INSTALL_HINT}); skipping the reference figure")
        args.skip_kamailio = True
    if not pinned(0):
        print("warning: fewer than 2 CPUs or no taskset: server and load are not pinned")

    started = datetime.now(UTC).isoformat(timespec="seconds")
    print(
        f"SIP benchmark {started}  {platform.node()}  {os.cpu_count()} CPUs  "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    workdir = Path(tempfile.mkdtemp(prefix="callbridge-sipbench-"))
    results: dict[str, Result] = {}
    try:
        if not args.skip_callbridge:
            command = (
                shlex.split(args.callbridge_cmd) if args.callbridge_cmd else callbridge_command()
            )
            proc, target = start_callbridge(workdir, command)
            try:
                assert target.credentials is not None
                register(target.address, target.uas_port, *target.credentials, workdir)

                def check_cb() -> None:
                    if proc.poll() is not None:
                        raise RuntimeError(
                            f"callbridge exited:\n{tail(workdir / 'callbridge.log')}"
                        )

                results["callbridge"] = step_through(
                    target, args.rates, duration, args.hold_ms, args.retries, workdir, check_cb
                )
            finally:
                stop_group(proc)
            problems = [
                line
                for line in (workdir / "callbridge.log").read_text(errors="replace").splitlines()
                if '"level": "error"' in line or '"level": "critical"' in line
            ]
            if problems:
                print(f"  callbridge logged {len(problems)} error(s); first: {problems[0][:300]}")
        if not args.skip_kamailio:
            rates = list(args.rates)
            cb = results.get("callbridge")
            if cb is not None and cb.max_rate and not args.kamailio_from_bottom:
                rates = [r for r in rates if r >= cb.max_rate]
            proc, target = start_kamailio(workdir, args.kamailio_children)
            try:

                def check_k() -> None:
                    if proc.poll() is not None:
                        raise RuntimeError(f"kamailio exited:\n{tail(workdir / 'kamailio.log')}")

                results["kamailio"] = step_through(
                    target, rates, duration, args.hold_ms, args.retries, workdir, check_k
                )
            finally:
                stop_group(proc)
    finally:
        if args.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    print()
    summary: dict[str, Any] = {
        "started": started,
        "duration_s": duration,
        "hold_ms": args.hold_ms,
        "p99_target_ms": P99_TARGET_MS,
        "load_end": [round(x, 2) for x in os.getloadavg()],
    }
    for name, result in results.items():
        best = result.best
        bound = "≥ " if result.capped else ""
        if best is None:
            print(f"{name}: no step passed")
        else:
            print(
                f"{name}: max {bound}{result.max_rate} calls/s with zero failed calls,"
                f" INVITE->200 p99 {best.p99_ms:.0f} ms, server CPU {best.server_cpu:.2f}"
                f" ({best.cpu_ms_per_call:.2f} ms per call), load {best.load1:.2f};"
                f" limited by: {result.limit}"
            )
        summary[name] = {
            "max_calls_per_s": result.max_rate,
            "lower_bound": result.capped,
            "limit": result.limit,
            "best": asdict(best) if best is not None else None,
            "steps": [asdict(s) for s in result.steps],
        }
    cb, kam = results.get("callbridge"), results.get("kamailio")
    if cb is not None:
        verdict = "met" if cb.max_rate >= TARGET_CPS else "MISSED"
        print(f"target >= {TARGET_CPS} calls/s on one core: {verdict}")
    if cb is not None and kam is not None and kam.max_rate:
        ratio = cb.max_rate / kam.max_rate
        bound = " (Kamailio's figure is a lower bound: an upper bound)" if kam.capped else ""
        print(f"ratio callbridge / Kamailio, max calls/s: {ratio:.2f}{bound}")
        summary["ratio"] = round(ratio, 3)
        if cb.best is not None and kam.best is not None and cb.best.cpu_ms_per_call:
            cpu_ratio = kam.best.cpu_ms_per_call / cb.best.cpu_ms_per_call
            print(
                f"ratio callbridge / Kamailio, calls per CPU-second at their best steps:"
                f" {cpu_ratio:.3f} ({cb.best.cpu_ms_per_call:.2f} vs"
                f" {kam.best.cpu_ms_per_call:.2f} ms of CPU per call)"
            )
            summary["cpu_ratio"] = round(cpu_ratio, 4)
    print(json.dumps(summary, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
