"""Round trips through JH UniScheduler's own tables: generated hosts, GPUs and jobs are printed the way jhosts and
jjobs print them (tests/schedulers/fixtures/jh_*.txt, /work/shared/reference/scheduler-formats.md), and the
parsers give back what was printed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from xdimo.schedulers import jh_parse
from xdimo.schedulers import lsf_parse as P

FAST = settings(max_examples=100, deadline=None)
LOWER = "abcdefghijklmnopqrstuvwxyz"
DIGITS = "0123456789"
LETTERS = LOWER + LOWER.upper()


def word(first: str, rest: str, most: int, last: str = "") -> st.SearchStrategy[str]:
    """A name: one of ``first``, up to ``most`` of ``rest``, then one of ``last`` if given (cheaper than from_regex)."""
    tail = st.sampled_from(last) if last else st.just("")
    return st.tuples(st.sampled_from(first), st.text(rest, max_size=most), tail).map("".join)


HOST = word(LOWER, LOWER + DIGITS + "-", 11, DIGITS)
GPU_MODEL = word("N", LETTERS + DIGITS, 24).map(lambda w: "NVIDIA" + w[1:])  # printed without spaces
CPU_MODEL = word(LETTERS, LETTERS + DIGITS + "_", 9)
GAP = st.integers(1, 4).map(lambda n: " " * n)


@st.composite
def memory(draw: st.DrawFn) -> tuple[str, int]:
    """A max_mem as jhosts may print it, and the MiB it is."""
    mib = draw(st.integers(1, 200_000))
    forms = [(f"{mib}M", mib), (f"{mib}MB", mib), (f"{mib * 1024}K", mib), (f"{mib * 2**20}", mib)]
    if mib % 1024 == 0:
        forms += [(f"{mib // 1024}G", mib), (f"{mib // 1024}g", mib), (f"{mib / 1024:.1f}G", mib)]
    if mib % 2**20 == 0:
        forms.append((f"{mib // 2**20}T", mib))
    return draw(st.sampled_from(forms))


@st.composite
def gpu_tables(draw: st.DrawFn) -> tuple[str, str, list[tuple[int, str, int]]]:
    """``jhosts attrib -l host``: a HOST line, other attributes, then the GPU table (which may be missing)."""
    host = draw(HOST)
    gpus = [(i, draw(GPU_MODEL), *draw(memory())) for i in range(draw(st.integers(0, 8)))]
    lines = [f"HOST: {host}"]
    lines += [f"  {k}: {v}" for k, v in draw(st.lists(st.tuples(CPU_MODEL, st.integers(0, 999)), max_size=3))]
    if gpus or draw(st.booleans()):
        g = draw(GAP)
        lines.append(f"  GPU: ID{g} type{g}max_mem  processors  cores  threads  capability  gpu_clock max_power")
        for i, model, mem_text, _ in gpus:
            lines.append(f"{draw(GAP)}{i}{draw(GAP)}{model}{draw(GAP)}{mem_text}{draw(GAP)}110   7040   168960"
                         "         8.9  2460.0MHz    285.0w")
    if draw(st.booleans()):
        lines += ["", "  RESOURCES: (gpu mg)"]
    return "\n".join(lines) + "\n", host, [(i, model, mib) for i, model, _, mib in gpus]


@FAST
@given(gpu_tables())
def test_attrib_gpu_table_round_trip(table: tuple[str, str, list[tuple[int, str, int]]]) -> None:
    text, host, gpus = table
    rows = jh_parse.parse_attrib_gpus(text, host)
    assert [(g.host, g.index, g.model, g.memory_mib) for g in rows] == [(host, i, m, mib) for i, m, mib in gpus]


@st.composite
def attrib_hosts(draw: st.DrawFn) -> dict:
    return {"host": draw(HOST), "type": draw(st.sampled_from(["X86_64", "LINUX64", "aarch64"])),
            "model": draw(CPU_MODEL), "ncpus": draw(st.integers(1, 512)),
            "ngpus": draw(st.one_of(st.none(), st.integers(0, 16))),
            "resources": draw(st.lists(st.sampled_from(["gpu", "mg", "ib", "nvme"]), max_size=3, unique=True))}


@FAST
@given(st.lists(attrib_hosts(), max_size=8, unique_by=lambda h: h["host"]), GAP)
def test_attrib_wide_round_trip(hosts: list[dict], gap: str) -> None:
    """``jhosts attrib -w``: ngpus and the model per host; a host that prints ``-`` for ngpus has no count."""
    lines = ["HOST_NAME type model ncpus maxmem maxswap nsocket ncore nthread ngpus nnodes RESOURCES".replace(" ", gap)]
    for h in hosts:
        ngpus = "-" if h["ngpus"] is None else str(h["ngpus"])
        lines.append(gap.join([h["host"], h["type"], h["model"], str(h["ncpus"]), "1024G", "0M", "2", "32", "64",
                               ngpus, "1", "(" + " ".join(h["resources"]) + ")"]))
    rows = jh_parse.parse_attrib_wide("\n".join(lines) + "\n")
    assert [(r.host, r.ngpus, r.model) for r in rows] == [(h["host"], h["ngpus"], h["model"]) for h in hosts]


STATUS = st.sampled_from(["ok", "closed_Full", "closed_Adm", "closed_Excl", "unavail", "unreach", "closed_LIM"])
COUNT = st.one_of(st.none(), st.integers(0, 512))


@FAST
@given(st.lists(st.tuples(HOST, STATUS, COUNT, COUNT, COUNT), max_size=8, unique_by=lambda h: h[0]),
       st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=30).filter(
           lambda t: "HOST_NAME" not in t), max_size=2))
def test_jhosts_wide_round_trip(hosts: list[tuple], banner: list[str]) -> None:
    """``jhosts -w`` (LSF-shaped): MAX, NJOBS and RUN per host; ``-`` is no number. What comes before the
    header (a banner, an error) is no host."""
    lines = banner + ["HOST_NAME          STATUS       JL/U    MAX  NJOBS    RUN  SSUSP  USUSP    RSV"]
    for name, status, mx, njobs, run in hosts:
        cells = ["-" if v is None else str(v) for v in (mx, njobs, run)]
        lines.append(f"{name:<18} {status:<12} {'-':>4} {cells[0]:>6} {cells[1]:>6} {cells[2]:>6}      0      0      0")
    rows = P.parse_hosts("\n".join(lines) + "\n")
    assert [(r.name, r.status, r.max_slots, r.njobs, r.run) for r in rows] == [h for h in hosts]


USER = word(LOWER, LOWER + DIGITS, 7)
QUEUE = st.sampled_from(["normal", "gpu_6000ada", "gpu_h200", "gpu_pro6000"])
NAME_WORD = word(LETTERS + "_", LETTERS + DIGITS + "_.-", 9)
WHEN = st.tuples(st.sampled_from(["Jan", "Mar", "Jun", "Oct", "Dec"]), st.integers(1, 31), st.integers(0, 23),
                 st.integers(0, 59)).map(lambda t: f"{t[0]} {t[1]} {t[2]:02d}:{t[3]:02d}")


@st.composite
def jjobs_rows(draw: st.DrawFn) -> dict:
    stat = draw(st.sampled_from(["RUN", "PEND", "PSUSP", "USUSP", "SSUSP", "DONE", "EXIT", "UNKWN", "ZOMBI"]))
    pending = stat in ("PEND", "PSUSP")
    host = draw(HOST)
    slots = draw(st.integers(1, 128))
    plain = draw(st.booleans())  # the manual's example prints a bare host name: one slot
    return {"id": str(draw(st.integers(1, 10**7))), "user": draw(USER), "stat": stat, "queue": draw(QUEUE),
            "from": draw(HOST), "exec": "" if pending else host if plain else f"{slots}*{host}",
            "hosts": () if pending else ((host, 1 if plain else slots),),
            "name": " ".join(draw(st.lists(NAME_WORD, min_size=1, max_size=3))), "when": draw(WHEN),
            "position": draw(st.integers(1, 99)) if stat == "PEND" else "-"}


@FAST
@given(st.lists(jjobs_rows(), max_size=8, unique_by=lambda r: r["id"]))
def test_jjobs_default_round_trip(jobs: list[dict]) -> None:
    """``jjobs`` as the JH manual prints it: no header, single spaces, a queue position (``-`` unless PEND)."""
    lines = [" ".join(w for w in (r["id"], r["user"], r["stat"], r["queue"], r["from"], r["exec"], r["name"],
                                  r["when"], str(r["position"])) if w) for r in jobs]
    ans = P.parse_jobs_default("\n".join(lines) + "\n")
    got = [(x.job_id, x.user, x.stat, x.queue, x.name, tuple((h.host, h.slots) for h in x.exec_hosts))
           for x in ans.rows]
    assert got == [(r["id"], r["user"], r["stat"], r["queue"], r["name"], r["hosts"]) for r in jobs]
    assert not ans.header_only
