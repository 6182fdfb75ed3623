"""A scheduler double for the LSF family (JH UniScheduler and IBM LSF), shared by the fake executables.

State lives in the folder named by $XDIMO_FAKE_STATE:
  config.json   {"user": "tester", "max_pending": 1, "cpu_per_gpu": 8,
                 "queues": {"gpu_h200": {"cards": 5, "cards_per_host": 5, "hosts": ["h200n01"], "taken": 0}},
                 "others": [{"queue": "gpu_6000ada", "user": "alice", "slots": 16, "gpus": 2}],
                 "hidden": ["12"],            # ids the jobs command pretends not to know (a vanished job)
                 "vanish": "not_found",       # how a hidden id is answered: not_found | header_only | empty
                                              # | garbage (every listing gains a line that is no job)
                 "jobs_fault": "noise",       # the jobs (and hosts) command misbehaves: noise (a site wrapper's
                                              # warning on stderr first) | hang | garbage | binary (stdout)
                 "o_format": true,            # false: `-o` is refused like an old site would
                 "o_refuse": ["start_time"],  # `-o` fields the site does not know: an `-o` naming one is refused
                 "extra_pending": 0,          # pending jobs the limit counts that no listing shows
                 "host_status": {"h200n01": "unavail"},  # a host's `-w` STATUS: nothing starts there
                 "hosts_fail": false}         # the hosts command fails (no answer at all)
  jobs/<id>.json  one job each; next_id; lock (fcntl); jobs/<id>.kill (kill requested); jobs/<id>.pid
  calls.jsonl     every command the double was run as, one JSON argv a line (["bkill", "-s", "USR1", "101"])

Each job runs as a detached wrapper process (its own session) that runs the script with bash, writes its
-o/-e files (%J = the job id), and appends the scheduler's summary when the script ends. Pending jobs start
when a later command of the double finds the cards free (a "tick" at the start of every command), FIFO.
A job uses slots = -n and GPUs = per-host GPUs x hosts (hosts = ceil(n / ptile) with span[ptile=..]).
Like the user's site, a job asking more than cpu_per_gpu x GPUs CPU slots never starts.

Printed formats follow /work/shared/reference/scheduler-formats.md. Where the reference has no verbatim text
the double says so next to the string (`invented:`).
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

HERE = Path(__file__).resolve().parent
PENDING_LIMIT = "待提交任务数达上限"
JH_SCRIPT_LIMIT = 4096
FLAVOURS = {
    "jh": {"directive": "#JSUB", "sender": "Unischeduler System", "gpu_flag": "-gpgpu", "env": "JH"},
    "lsf": {"directive": "#BSUB", "sender": "LSF System", "gpu_flag": "-gpu", "env": "LSB"},
}


# -- state ------------------------------------------------------------------------------------------------


class State:
    def __init__(self, folder: str | None = None) -> None:
        root = folder or os.environ.get("XDIMO_FAKE_STATE")
        if not root:
            sys.stderr.write("fake scheduler: XDIMO_FAKE_STATE is not set\n")
            sys.exit(2)
        self.dir = Path(root)
        self.jobs_dir = self.dir / "jobs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)

    @property
    def config(self) -> dict:
        path = self.dir / "config.json"
        return json.loads(path.read_text()) if path.exists() else {}

    @contextmanager
    def locked(self) -> Iterator[State]:
        with open(self.dir / "lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield self
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def jobs(self) -> list[dict]:
        out = []
        for p in self.jobs_dir.glob("*.json"):
            with suppress(ValueError, OSError):
                out.append(json.loads(p.read_text()))
        return sorted(out, key=lambda j: int(j["id"]))

    def job(self, job_id: str) -> dict | None:
        p = self.jobs_dir / f"{job_id}.json"
        return json.loads(p.read_text()) if p.exists() else None

    def save(self, job: dict) -> None:
        tmp = self.jobs_dir / f"{job['id']}.json.tmp"
        tmp.write_text(json.dumps(job, indent=1))
        tmp.replace(self.jobs_dir / f"{job['id']}.json")

    def next_id(self) -> str:
        p = self.dir / "next_id"
        n = int(p.read_text()) if p.exists() else int(self.config.get("first_id", 101))
        p.write_text(str(n + 1))
        return str(n)


def queue_conf(cfg: dict, queue: str) -> dict | None:
    q = cfg.get("queues", {}).get(queue)
    if q is None:
        return None
    cards = int(q.get("cards", 8))
    per_host = int(q.get("cards_per_host", cards))
    n_hosts = math.ceil(cards / per_host)
    short = queue.split("_")[-1]
    hosts = q.get("hosts") or [f"{short}n{i + 1:02d}" for i in range(n_hosts)]
    return {"cards": cards, "per_host": per_host, "hosts": hosts, "taken": int(q.get("taken", 0))}


# -- tick: reap finished jobs, start pending ones ---------------------------------------------------------


def tick(st: State) -> None:
    cfg = st.config
    jobs = st.jobs()
    for job in jobs:
        if job["stat"] in ("RUN", "USUSP", "SSUSP"):
            rc_file = st.jobs_dir / f"{job['id']}.rc"
            if rc_file.exists():
                code = int(rc_file.read_text().strip() or 1)
                job["stat"] = "DONE" if code == 0 else "EXIT"
                job["exit_code"] = code
                job["ended_at"] = time.time()
                st.save(job)
    for job in jobs:
        if job["stat"] == "PEND":
            hosts = allocate(cfg, jobs, job)
            if hosts is not None:
                start(st, job, hosts)


def host_use(cfg: dict, jobs: list[dict], queue: str) -> dict[str, int]:
    q = queue_conf(cfg, queue) or {"hosts": [], "per_host": 0}
    use = {h: 0 for h in q["hosts"]}
    if q["hosts"]:
        use[q["hosts"][-1]] += q.get("taken", 0)  # the card someone holds outside the scheduler's view
    for other in cfg.get("others", []):
        if other.get("queue") == queue and other.get("stat", "RUN") == "RUN" and q["hosts"]:
            host = other.get("host") or q["hosts"][0]
            use[host] = use.get(host, 0) + int(other.get("gpus", 0))
    for j in jobs:
        if j["queue"] == queue and j["stat"] in ("RUN", "USUSP", "SSUSP"):
            for h in j["hosts"]:
                use[h] = use.get(h, 0) + j["gpus_per_host"]
    return use


# `-w` STATUS values that admit jobs (LSF's bhosts manual); the rest (unavail, unreach, closed_Adm, ...) do not.
USABLE = ("ok", "closed_full", "closed_excl", "closed_busy")


def host_up(cfg: dict, host: str) -> bool:
    return cfg.get("host_status", {}).get(host, "ok").lower() in USABLE


def allocate(cfg: dict, jobs: list[dict], job: dict) -> list[str] | None:
    q = queue_conf(cfg, job["queue"])
    if q is None:
        return None
    if job["slots"] > int(cfg.get("cpu_per_gpu", 8)) * job["gpus"]:
        return None  # the site: more CPU slots than 8 x GPUs and the job never starts
    use = host_use(cfg, jobs, job["queue"])
    free = [h for h in q["hosts"] if q["per_host"] - use.get(h, 0) >= job["gpus_per_host"]
            and host_up(cfg, h)]
    if len(free) < job["n_hosts"]:
        return None
    # FIFO: an earlier pending job of the same queue goes first
    earlier = [j for j in jobs if j["queue"] == job["queue"] and j["stat"] == "PEND" and int(j["id"]) < int(job["id"])]
    if earlier:
        return None
    return free[: job["n_hosts"]]


def start(st: State, job: dict, hosts: list[str]) -> None:
    job["stat"] = "RUN"
    job["hosts"] = hosts
    job["started_at"] = time.time()
    st.save(job)
    subprocess.Popen([sys.executable, str(HERE / "fakesched.py"), "run", str(st.dir), job["id"]],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True, close_fds=True)


# -- the wrapper that runs one job ------------------------------------------------------------------------


def run_job(state_dir: str, job_id: str) -> int:
    st = State(state_dir)
    job = st.job(job_id)
    assert job is not None
    fl = FLAVOURS[job["flavour"]]
    out_path, err_path = job_file(job, "out"), job_file(job, "err")
    for p in (out_path, err_path):
        if p:
            p.parent.mkdir(parents=True, exist_ok=True)
    # LSF spools stdout and writes the -o file at the end (header first, then the output); JH appends.
    spool = st.jobs_dir / f"{job_id}.spool" if job["flavour"] == "lsf" else out_path
    env = dict(os.environ)
    per = job["slots"] // max(1, len(job["hosts"]))
    pairs = " ".join(f"{h} {per}" for h in job["hosts"])
    pre = fl["env"]
    env.update({f"{pre}_JOBID": job_id, f"{pre}_QUEUE": job["queue"], f"{pre}_JOBNAME": job["name"]})
    if pre == "JH":
        env.update({"JH_HOSTS": pairs, "JH_SUB_CWD": job["cwd"], "JH_GPU_RANK": ";".join(
            str(i) for i in range(job["gpus_per_host"]))})
    else:
        env.update({"LSB_MCPU_HOSTS": pairs, "LSB_HOSTS": " ".join(h for h in job["hosts"] for _ in range(per))})
    killed = False
    code = 130
    if not (st.jobs_dir / f"{job_id}.kill").exists():
        with open_or_null(spool, "ab") as out, open_or_null(err_path, "ab") as err:
            proc = subprocess.Popen(["bash", str(st.jobs_dir / f"{job_id}.sh")], cwd=job["cwd"] or None,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                    start_new_session=True)
            (st.jobs_dir / f"{job_id}.pid").write_text(str(proc.pid))
            code, killed = wait_with_kill(st, job_id, proc)
    else:
        killed = True
    job = st.job(job_id) or job
    job["cpu_time"] = round(time.time() - job["started_at"], 2)
    append_summary(job, out_path, spool, code, killed)
    (st.jobs_dir / f"{job_id}.rc").write_text(str(code))
    with st.locked():
        tick(st)  # let the next pending job start without waiting for a command
    return 0


def wait_with_kill(st: State, job_id: str, proc: subprocess.Popen) -> tuple[int, bool]:
    """Wait; after a kill request escalate like bkill: SIGINT (sent by the kill command), SIGTERM, SIGKILL."""
    asked_at = None
    while True:
        rc = proc.poll()
        if rc is not None:
            code = 128 - rc if rc < 0 else rc
            return code, asked_at is not None
        if (st.jobs_dir / f"{job_id}.kill").exists():
            asked_at = asked_at or time.time()
            waited = time.time() - asked_at
            with suppress(ProcessLookupError):
                if waited > 2.0:
                    os.killpg(proc.pid, signal.SIGKILL)
                elif waited > 1.0:
                    os.killpg(proc.pid, signal.SIGTERM)
        time.sleep(0.05)


@contextmanager
def open_or_null(path: Path | None, mode: str) -> Iterator:
    if path is None:
        with open(os.devnull, mode) as f:
            yield f
    else:
        with open(path, mode) as f:
            yield f


def job_file(job: dict, which: str) -> Path | None:
    raw = job.get(which)
    if not raw:
        return None
    p = Path(raw.replace("%J", job["id"]))
    return p if p.is_absolute() else Path(job["cwd"] or ".") / p


def append_summary(job: dict, out_path: Path | None, spool: Path | None, code: int, killed: bool) -> None:
    if out_path is None:
        return
    fl = FLAVOURS[job["flavour"]]
    slots = job["slots"] // max(1, len(job["hosts"]))
    hosts = ">, <".join(f"{slots}*{h}" for h in job["hosts"])
    user = job["user"]
    result = "Successfully completed." if code == 0 else f"Exited with exit code {code}."
    if job["flavour"] == "jh":
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job["started_at"]))
        ended = time.strftime("%Y-%m-%d %H:%M:%S")
        text = (f"Sender: {fl['sender']} <{user}@login01>\n"
                f"Subject: Job {job['id']}: <{job['script_home']}> {'Done' if code == 0 else 'Exited'}\n"
                f"Job was executed on host(s) <{hosts}>, in queue <{job['queue']}>, as user <{user}>.\n"
                f"Started at {started}\nResults reported at {ended}\n{result}\n"
                f"\t\tCPU time:       {job['cpu_time']:.2f} sec.\n\t\tMax Memory:     1 GB\n"
                f"\t\tMax Processes:  3\n")
        with open(out_path, "a") as f:
            f.write(text)
        return
    fmt = "%a %b %d %H:%M:%S %Y"
    started = time.strftime(fmt, time.localtime(job["started_at"]))
    ended = time.strftime(fmt)
    term = "TERM_OWNER: job killed by owner.\n" if killed else ""
    output = spool.read_text(errors="replace") if spool and spool.exists() else ""
    text = (f"Sender: {fl['sender']} <lsfadmin@{job['hosts'][0] if job['hosts'] else 'master'}>\n"
            f"Subject: Job {job['id']}: <{job['name']}> in cluster <fake> {'Done' if code == 0 else 'Exited'}\n\n"
            f"Job <{job['name']}> was submitted from host <login01> by user <{user}> in cluster <fake>.\n"
            f"Job was executed on host(s) <{hosts}>, in queue <{job['queue']}>, as user <{user}> in cluster "
            f"<fake>.\n</home/{user}> was used as the home directory.\n"
            f"<{job['cwd']}> was used as the working directory.\n"
            f"Started at {started}\nTerminated at {ended}\nResults reported at {ended}\n\n"
            "Your job looked like:\n\n" + "-" * 60 + "\n# LSBATCH: User input\n"
            f"{job['script_text']}\n" + "-" * 60 + f"\n\n{term}{result}\n\nResource usage summary:\n\n"
            f"    CPU time :                                   {job['cpu_time']:.2f} sec.\n"
            "    Max Memory :                                 1024 MB\n"
            "    Max Processes :                              3\n\n"
            f"The output (if any) follows:\n\n{output}")
    with open(out_path, "a") as f:
        f.write(text)


# -- jsub / bsub ------------------------------------------------------------------------------------------

VALUE_FLAGS = {"-J", "-q", "-n", "-gpgpu", "-gpu", "-R", "-o", "-e", "-cwd", "-W", "-P", "-m"}


def parse_options(words: list[str]) -> dict[str, str]:
    opts: dict[str, str] = {}
    i = 0
    while i < len(words):
        w = words[i]
        if w in VALUE_FLAGS and i + 1 < len(words):
            opts.setdefault(w, words[i + 1])  # a repeated option: the first wins
            i += 2
        else:
            opts.setdefault(w, "")
            i += 1
    return opts


def script_options(script: str, directives: tuple[str, ...]) -> dict[str, str]:
    """Directive lines up to the first command line (LSF stops reading #BSUB there)."""
    words: list[str] = []
    for line in script.splitlines()[1:]:
        s = line.strip()
        if not s:
            continue
        if not s.startswith("#"):
            break
        for d in directives:
            if s.startswith(d + " "):
                words += shlex.split(s[len(d):])
    return parse_options(words)


def gpus_per_host(value: str) -> int:
    m = re.search(r"num=(\d+)", value) or re.match(r"\s*(\d+)", value)
    return int(m.group(1)) if m else 0


def main_submit(flavour: str, argv: list[str]) -> int:
    st = State()
    cfg = st.config
    fl = FLAVOURS[flavour]
    name = "jsub" if flavour == "jh" else "bsub"
    if sys.stdin.isatty() or (argv and not argv[-1].startswith("-") and Path(argv[-1]).exists()):
        # invented: the reference says `jsub script` fails at many sites; the double insists on stdin
        print(f"{name}: submit the script on stdin ({name} < script). Job not submitted.", file=sys.stderr)
        return 255
    script = sys.stdin.read()
    cmd = parse_options(argv)
    directives = ("#JSUB", "#BSUB") if flavour == "jh" else ("#BSUB",)
    opts = script_options(script, directives)
    warnings = []
    for flag, value in cmd.items():
        if flag in opts:
            warnings.append(f"Repeated argument <{flag} {opts[flag]}> in script, ignored")
        opts[flag] = value
    if flavour == "jh" and len(script.encode()) > JH_SCRIPT_LIMIT:
        print(f"Script is longer than {JH_SCRIPT_LIMIT} bytes. Job not submitted.")  # invented wording
        return 255
    queue = opts.get("-q", "normal")
    with st.locked():
        tick(st)
        if queue_conf(cfg, queue) is None:
            print(f"{queue}: No such queue. Job not submitted.")
            return 255
        user = cfg.get("user", "tester")
        pending = [j for j in st.jobs() if j["user"] == user and j["stat"] in ("PEND", "PSUSP")]
        # extra_pending: pending jobs the site counts but no listing shows yet (another session, a race)
        if len(pending) + int(cfg.get("extra_pending", 0)) >= int(cfg.get("max_pending", 1)):
            for w in warnings:
                print(w)
            if flavour == "jh":
                print(PENDING_LIMIT)  # the site's real refusal (stream and exit code not documented)
                return 255
            return lsf_pending_threshold()
        job = new_job(st, flavour, script, opts, fl)
        st.save(job)
        (st.jobs_dir / f"{job['id']}.sh").write_text(script)
        tick(st)
    for w in warnings:
        print(w)
    print(f"Job <{job['id']}> is submitted to queue <{queue}>.")
    return 0


def lsf_pending_threshold() -> int:
    """LSF past MAX_PEND_JOBS: bsub retries every SUB_TRY_INTERVAL until LSB_NTRIES tries, forever without it
    (lsb.params MAX_PEND_JOBS). The double waits 0.1 s between tries and, without LSB_NTRIES, hangs like bsub."""
    tries = os.environ.get("LSB_NTRIES")
    n = 0
    while True:
        n += 1
        print("Pending job threshold reached. Retrying in 60 seconds...", flush=True)
        if tries and n >= int(tries):
            print("Pending job threshold reached. Job not submitted.")  # invented: the final give-up line
            return 255
        time.sleep(0.1)


def new_job(st: State, flavour: str, script: str, opts: dict[str, str], fl: dict) -> dict:
    job_id = st.next_id()
    slots = int(opts.get("-n", "1").split(",")[0])
    per_host = gpus_per_host(opts.get(fl["gpu_flag"], "0"))
    ptile = re.search(r"span\[ptile=(\d+)\]", opts.get("-R", ""))
    n_hosts = math.ceil(slots / int(ptile.group(1))) if ptile else 1
    return {"id": job_id, "flavour": flavour, "user": st.config.get("user", "tester"), "stat": "PEND",
            "queue": opts.get("-q", "normal"), "name": opts.get("-J", "NONAME"), "slots": slots,
            "gpus_per_host": per_host, "n_hosts": n_hosts, "gpus": per_host * n_hosts, "hosts": [],
            "out": opts.get("-o", ""), "err": opts.get("-e", ""), "cwd": opts.get("-cwd", os.getcwd()),
            "walltime": opts.get("-W"), "submitted_at": time.time(), "exit_code": None,
            "script_text": script.rstrip("\n"), "script_home": str(st.jobs_dir / f"{job_id}.sh")}


# -- jjobs / bjobs ----------------------------------------------------------------------------------------


def parse_jobs_args(argv: list[str]) -> dict:
    a: dict = {"all_states": False, "user": None, "o": None, "wide": False, "ids": [], "queue": None, "name": None}
    i = 0
    while i < len(argv):
        w = argv[i]
        if w == "-a":
            a["all_states"] = True
        elif w == "-w":
            a["wide"] = True
        elif w in ("-u", "-o", "-q", "-J") and i + 1 < len(argv):
            a[{"-u": "user", "-o": "o", "-q": "queue", "-J": "name"}[w]] = argv[i + 1]
            i += 1
        elif re.fullmatch(r"\d+", w):
            a["ids"].append(w)
        i += 1
    return a


def visible_rows(st: State, cfg: dict, a: dict) -> tuple[list[dict], list[str]]:
    """Rows to print and ids to report as not found."""
    user = cfg.get("user", "tester")
    hidden = set(map(str, cfg.get("hidden", [])))
    mine = [j for j in st.jobs() if j["id"] not in hidden]
    others = [{"id": str(9000 + n), "user": o.get("user", "alice"), "stat": o.get("stat", "RUN"),
               "queue": o["queue"], "name": o.get("name", f"other{n}"), "slots": int(o.get("slots", 8)),
               "hosts": [o.get("host") or (queue_conf(cfg, o["queue"]) or {"hosts": ["x"]})["hosts"][0]],
               "submitted_at": time.time() - 3600, "gpus": int(o.get("gpus", 1))}
              for n, o in enumerate(cfg.get("others", []))]
    every = mine + others
    if a["ids"]:
        known = {j["id"]: j for j in every}
        rows = [known[i] for i in a["ids"] if i in known]
        missing = [i for i in a["ids"] if i not in known]
        return rows, missing
    if a["user"] != "all":
        every = [j for j in every if j["user"] == (a["user"] or user)]
    if not a["all_states"]:
        every = [j for j in every if j["stat"] not in ("DONE", "EXIT", "ZOMBI")]
    if a["queue"]:
        every = [j for j in every if j["queue"] == a["queue"]]
    if a["name"]:
        every = [j for j in every if j["name"] == a["name"]]
    return every, []


def exec_host_o(job: dict) -> str:
    if not job["hosts"] or job["stat"] == "PEND":
        return "-"
    per = job["slots"] // len(job["hosts"])
    return ":".join(f"{per}*{h}" for h in job["hosts"])


def site_fault(cfg: dict) -> int | None:
    """config "jobs_fault": what a misbehaving site's jobs/hosts command does first (invented text, the shapes
    of the fault review's wrappers); an exit code where that is all it answers, None where the real answer
    follows."""
    fault = cfg.get("jobs_fault")
    if fault == "noise":
        print("WARNING: license server slow", file=sys.stderr)
    elif fault == "hang":
        time.sleep(3600)
    elif fault == "garbage":
        print("ksjdf 1234 %%% <<garbage>> \u00ff\u00ff\nsecond line")
        return 0
    elif fault == "binary":
        sys.stdout.flush()
        sys.stdout.buffer.write(b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(128, 256)) + b"/lib64/ld-linux\n")
        return 0
    return None


def main_jobs(flavour: str, argv: list[str]) -> int:
    st = State()
    cfg = st.config
    fault = site_fault(cfg)
    if fault is not None:
        return fault
    with st.locked():
        tick(st)
    a = parse_jobs_args(argv)
    rows, missing = visible_rows(st, cfg, a)
    vanish = cfg.get("vanish", "not_found")
    if a["o"] is not None:
        if not cfg.get("o_format", True):
            print("jjobs: illegal option -- o" if flavour == "jh" else "bjobs: illegal option -- o",
                  file=sys.stderr)  # invented: an old site without -o
            return 255
        unknown = refused_field(cfg, a["o"])
        if unknown:  # invented wording (the shape the backend's scripted tests use): no row printed, exit 255
            print(f"{unknown}: Illegal field name.", file=sys.stderr)
            return 255
        text = format_o(flavour, rows, a["o"])
    else:
        text = format_default(flavour, rows, a["wide"])
    if missing and vanish == "header_only" and not rows:
        text = header_of(flavour, a["o"])
        missing = []
    if missing and vanish == "empty":
        missing = []
    if vanish == "garbage" and cfg.get("hidden"):  # invented: a listing with a line that is not a job
        text = (text or header_of(flavour, a["o"])) + "\n<<< 12 34 unreadable >>>"
        missing = []
    if not rows and not missing and vanish not in ("header_only", "garbage"):
        print("No unfinished job found", file=sys.stderr)
        return 0
    if text:
        print(text)
    for i in missing:
        print(f"Job <{i}> is not found", file=sys.stderr)
    return 255 if missing else 0


def header_of(flavour: str, o: str | None) -> str:
    if o is None:
        return "JOBID   USER    STAT  QUEUE      FROM_HOST   EXEC_HOST   JOB_NAME   SUBMIT_TIME"
    fields, delim = split_o(o)
    return delim.join(f.upper() for f in fields)


def split_o(o: str) -> tuple[list[str], str]:
    m = re.search(r"delimiter='(.)'", o)
    delim = m.group(1) if m else " "
    fields = [f.split(":")[0] for f in re.sub(r"delimiter='.'", "", o).split()]
    return fields, delim


def refused_field(cfg: dict, o: str) -> str | None:
    """The first `-o` field the site's config says it does not know (o_refuse), if the call names one."""
    refuse = {f.lower() for f in cfg.get("o_refuse", [])}
    return next((f for f in split_o(o)[0] if f.lower() in refuse), None)


# `-o start_time`: LSF 10.1's form (`Sep 19 14:59:12 2026`); JH documents no `-o` fields, so the double prints the
# form of JH's job summary (`2025-06-30 20:32:46`, the one dated line JH prints with seconds and a year).
START_FORMATS = {"lsf": "%b %d %H:%M:%S %Y", "jh": "%Y-%m-%d %H:%M:%S"}


def start_time_o(flavour: str, job: dict) -> str:
    """A started job's start in the flavour's form; `-` for a job that never started (pending, killed pending)."""
    at = job.get("started_at")
    if at is None or job["stat"] in ("PEND", "PSUSP"):
        return "-"
    return time.strftime(START_FORMATS[flavour], time.localtime(at))


def format_o(flavour: str, rows: list[dict], o: str) -> str:
    fields, delim = split_o(o)
    lines = [delim.join(f.upper() for f in fields)]
    for j in rows:
        values = {"jobid": j["id"], "user": j["user"], "stat": j["stat"], "queue": j["queue"],
                  "exec_host": exec_host_o(j), "job_name": j["name"], "gpu_num": str(j.get("gpus", "-")),
                  "from_host": "login01", "start_time": start_time_o(flavour, j)}
        lines.append(delim.join(values.get(f, "-") for f in fields))
    return "\n".join(lines)


def format_default(flavour: str, rows: list[dict], wide: bool) -> str:
    lines = [header_of(flavour, None)]
    for j in rows:
        name = j["name"] if wide or len(j["name"]) <= 10 else "*" + j["name"][-9:]
        per = j["slots"] // max(1, len(j["hosts"]))
        hosts = [f"{per}*{h}" for h in j["hosts"]] if j["stat"] != "PEND" else []
        when = time.strftime("%b %d %H:%M", time.localtime(j["submitted_at"]))
        first = hosts[0] if hosts else ""
        line = (f"{j['id']:<7} {j['user']:<7} {j['stat']:<5} {j['queue']:<10} {'login01':<11} {first:<11} "
                f"{name:<10} {when}")
        if flavour == "jh":
            line += " " + ("1" if j["stat"] == "PEND" else "-")
        lines.append(line)
        lines += [" " * 45 + h for h in hosts[1:]]  # LSF wraps further hosts onto their own lines
    return "\n".join(lines)


# -- jctrl kill / bkill -----------------------------------------------------------------------------------


def main_kill(flavour: str, argv: list[str]) -> int:
    st = State()
    sig = argv[argv.index("-s") + 1] if flavour == "lsf" and "-s" in argv[:-1] else None
    if sig is not None:
        argv = [w for i, w in enumerate(argv) if w != "-s" and (i == 0 or argv[i - 1] != "-s")]
    ids = [w for w in argv if re.fullmatch(r"\d+", w)]
    rc = 0
    with st.locked():
        tick(st)
        for job_id in ids:
            job = st.job(job_id)
            if sig is not None and job is not None and job["stat"] not in ("DONE", "EXIT"):
                rc = max(rc, send_signal(st, job, sig))
                continue
            if job is None or job["stat"] in ("DONE", "EXIT"):
                if flavour == "jh":
                    print("No unfinished job found")
                else:
                    print(f"Job <{job_id}>: " + ("Job has already finished" if job else "No matching job found"),
                          file=sys.stderr)
                    rc = 255
                continue
            (st.jobs_dir / f"{job_id}.kill").write_text("1")
            if job["stat"] == "PEND":
                job["stat"], job["exit_code"], job["ended_at"] = "EXIT", 130, time.time()
                st.save(job)
            else:
                pid_file = st.jobs_dir / f"{job_id}.pid"
                if pid_file.exists():
                    with suppress(ProcessLookupError, ValueError):
                        os.killpg(int(pid_file.read_text()), signal.SIGINT)
            print(f"Job <{job_id}> is being terminated")
    return rc


def send_signal(st: State, job: dict, name: str) -> int:
    """`bkill -s NAME N`: that signal alone to the running job's processes (the job decides what it does), no
    kill. A pending job cannot be signalled (IBM LSF 10.1, "Send a signal to a job"; invented wording, after
    openlava's LSBE_NOT_STARTED message)."""
    job_id = job["id"]
    if job["stat"] in ("PEND", "PSUSP"):
        print(f"Job <{job_id}>: Job has not started yet", file=sys.stderr)
        return 255
    signum = getattr(signal, "SIG" + name.upper().removeprefix("SIG"), None)
    if not isinstance(signum, signal.Signals):
        print(f"bkill: Unknown signal <{name}>", file=sys.stderr)  # invented wording
        return 255
    pid_file = st.jobs_dir / f"{job_id}.pid"
    if pid_file.exists():
        with suppress(ProcessLookupError, ValueError):
            os.killpg(int(pid_file.read_text()), signum)
    print(f"Job <{job_id}> is being signaled")
    return 0


# -- jhosts / bhosts --------------------------------------------------------------------------------------


def main_hosts(flavour: str, argv: list[str]) -> int:
    st = State()
    cfg = st.config
    if cfg.get("jobs_fault") == "noise":
        print("WARNING: license server slow", file=sys.stderr)
    with st.locked():
        tick(st)
        jobs = st.jobs()
    queues = {q: queue_conf(cfg, q) for q in cfg.get("queues", {})}
    models = {q: v.get("model", "NVIDIARTX5880AdaGeneration") for q, v in cfg.get("queues", {}).items()}
    if argv[:1] == ["attrib"]:
        return hosts_attrib(queues, models, argv[1:])
    if "-gpu" in argv:
        print(f"{'HOST_NAME':<20} {'GPU_ID':>6} {'MODEL':<28} {'MUSED':>8} {'MRSV':>8} NJOBS RUN SUSP RSV")
        for q, conf in queues.items():
            for h in conf["hosts"]:
                for i in range(conf["per_host"]):
                    head = f"{h:<20}" if i == 0 else " " * 20
                    print(f"{head} {i:>6} {models[q]:<28} {'0M':>8} {'0M':>8}     0   0    0   0")
        return 0
    if cfg.get("hosts_fail"):  # invented wording: the reference has no failure text for jhosts/bhosts
        print(f"{'jhosts' if flavour == 'jh' else 'bhosts'}: failed to get host information", file=sys.stderr)
        return 255
    wide = "-w" in argv
    print("HOST_NAME          STATUS       JL/U    MAX  NJOBS    RUN  SSUSP  USUSP    RSV")
    for conf in queues.values():
        for h in conf["hosts"]:
            running = [j for j in jobs if h in j["hosts"] and j["stat"] == "RUN"]
            slots = sum(j["slots"] // max(1, len(j["hosts"])) for j in running)
            mx = conf["per_host"] * int(cfg.get("cpu_per_gpu", 8))
            status = cfg.get("host_status", {}).get(h) or ("closed_Full" if slots >= mx else "ok")
            if not wide:  # without -w LSF prints the short form: closed_Adm -> closed
                status = status.split("_")[0]
            print(f"{h:<18} {status:<12} {'-':>4} {mx:>6} {slots:>6} {slots:>6} {0:>6} {0:>6} {0:>6}")
    return 0


def hosts_attrib(queues: dict, models: dict, argv: list[str]) -> int:
    if "-l" in argv:
        wanted = [w for w in argv if not w.startswith("-")]
        for q, conf in queues.items():
            for h in conf["hosts"]:
                if wanted and h not in wanted:
                    continue
                print(f"HOST: {h}")
                print("  GPU: ID  type                        max_mem  processors  cores  threads  capability  "
                      "gpu_clock max_power")
                for i in range(conf["per_host"]):
                    print(f"        {i}  {models[q]:<26}  49140M         110   7040   168960         8.9  "
                          "2460.0MHz    285.0w")
                print()
        return 0
    print("HOST_NAME  type    model  ncpus  maxmem  maxswap  nsocket  ncore  nthread  ngpus  nnodes  RESOURCES")
    for conf in queues.values():
        for h in conf["hosts"]:
            print(f"{h}  X86_64  Intel  64  1024G  0M  2  32  64  {conf['per_host']}  1  (gpu)")
    return 0


# -- entry points -----------------------------------------------------------------------------------------

TOOLS = {
    "jsub": ("jh", main_submit), "bsub": ("lsf", main_submit),
    "jjobs": ("jh", main_jobs), "bjobs": ("lsf", main_jobs),
    "jhosts": ("jh", main_hosts), "bhosts": ("lsf", main_hosts),
    "jctrl": ("jh", main_kill), "bkill": ("lsf", main_kill),
}


def tool_main(tool: str) -> None:
    flavour, func = TOOLS[tool]
    argv = sys.argv[1:]
    state = os.environ.get("XDIMO_FAKE_STATE")
    if state and Path(state).is_dir():  # what was asked, for tests to check (one short append)
        with open(Path(state) / "calls.jsonl", "a") as log:
            log.write(json.dumps([tool, *argv]) + "\n")
    if tool == "jctrl":
        if argv[:1] != ["kill"]:
            print("jctrl: the double only does `jctrl kill`", file=sys.stderr)
            sys.exit(255)
        argv = argv[1:]
    sys.exit(func(flavour, argv))


if __name__ == "__main__":
    if sys.argv[1:2] == ["run"]:
        sys.exit(run_job(sys.argv[2], sys.argv[3]))
    print("usage: fakesched.py run STATE JOB_ID", file=sys.stderr)
    sys.exit(2)
