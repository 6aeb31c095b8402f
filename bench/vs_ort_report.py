#!/usr/bin/python3
"""Helpers of bench/vs-ort.sh over its output directory OUT (the one
bench/vs_ort_models.py wrote; run with Debian's /usr/bin/python3).

  vs_ort_report.py inputs OUT NAME
      prints NAME's inputs, one INPUT=ABSOLUTE_PATH.npy a line (the
      --input arguments of both runtimes)
  vs_ort_report.py check OUT NAME
      compares the outputs both runtimes wrote into OUT/check/{qkv,ort}/NAME
      with the reference outputs, |y - ref| <= 1e-5 + 1e-3 * |ref| element by
      element (numpy.allclose(rtol=1e-3, atol=1e-5), or the model's own
      "rtol"/"atol" from the manifest: the int8 models); prints one line per
      runtime, "ok" or "MISMATCH" with the largest absolute error, and records
      the verdict in OUT/check/NAME.json. A runtime that wrote no output (it
      failed; its error is in OUT/check/RUNTIME/NAME.err) is "error".
  vs_ort_report.py table OUT THREADS... -- LOAD_BEFORE LOAD_AFTER
      reads the JSON reports in OUT/json and the sgemm peaks in
      OUT/sgemm_peak_REP.txt (the best per thread count), prints the markdown table and writes it, with the
      notes, to OUT/results.md

JSON reports (OUT/json): qkv_NAME_T_REP.json (`qkv bench --json`),
qkv_NAME_T_REP.load (the session-creation ms `qkv run` printed),
ort_NAME_T_REP.json (bench/ort_bench.js --json).
"""
import glob
import json
import os
import re
import sys

RTOL, ATOL = 1e-3, 1e-5


def manifest(out):
    with open(os.path.join(out, "manifest.json")) as f:
        return json.load(f)["models"]


def cmd_inputs(out, name):
    m = manifest(out)
    if name not in m:
        sys.exit("vs_ort_report.py: no model '%s' in %s/manifest.json" % (name, out))
    for k, v in m[name]["inputs"].items():
        print("%s=%s" % (k, os.path.abspath(os.path.join(out, v))))


def _compare(ref_paths, got_dir, rtol=RTOL, atol=ATOL):
    """('ok' | 'MISMATCH' | 'error', detail)"""
    import numpy as np
    worst, bad = 0.0, []
    for oname, rpath in ref_paths.items():
        p = os.path.join(got_dir, oname + ".npy")
        if not os.path.exists(p):
            return "error", "no output '%s'" % oname
        ref, got = np.load(rpath), np.load(p)
        if ref.shape != got.shape:
            bad.append("%s: shape %s, reference %s" % (oname, got.shape, ref.shape))
            continue
        err = np.abs(got.astype(np.float64) - ref.astype(np.float64))
        if np.isnan(err).any():
            bad.append("%s: NaN" % oname)
            continue
        worst = max(worst, float(err.max()))
        if not np.allclose(got, ref, rtol=rtol, atol=atol):
            n = int((err > atol + rtol * np.abs(ref)).sum())
            bad.append("%s: %d of %d elements off" % (oname, n, ref.size))
    if bad:
        return "MISMATCH", "; ".join(bad) + " (max abs err %.3g)" % worst
    return "ok", "max abs err %.3g" % worst


def cmd_check(out, name):
    m = manifest(out)[name]
    refs = {o: os.path.join(out, r) for o, r in m["refs"].items()}
    verdict = {}
    for rt in ("qkv", "ort"):
        # a model may carry its own bound (the int8 ones: against the float model)
        v, detail = _compare(refs, os.path.join(out, "check", rt, name),
                             m.get("rtol", RTOL), m.get("atol", ATOL))
        if v == "error":
            errf = os.path.join(out, "check", rt, name + ".err")
            if os.path.exists(errf):
                with open(errf) as f:
                    lines = [ln.strip() for ln in f if ln.strip()]
                detail = lines[-1] if lines else detail
        verdict[rt] = {"verdict": v, "detail": detail}
        print("check %-12s %-4s %s (%s)" % (name, "qkv" if rt == "qkv" else "ORT", v, detail))
    with open(os.path.join(out, "check", name + ".json"), "w") as f:
        json.dump(verdict, f)


def _load(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        txt = f.read()
    try:
        return json.loads(txt)
    except ValueError:
        return {"error": "unreadable report %s" % path}


def _cell(text):
    """text fit for one markdown table cell"""
    return text.replace("|", "\\|").replace("\n", " ")


def _mib(b):
    return "%.0f MiB" % (b / 1048576.0)


# Variables that change which kernels run: a result measured under one of them
# is not the default install's, so the report names them.
TUNING_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "QKV_ISA",
              "QKV_PLUGIN_PATH", "DNNL_MAX_CPU_ISA")


def cmd_table(out, threads, load_before, load_after):
    models = manifest(out)
    jdir = os.path.join(out, "json")
    peak = {}  # threads -> best GFLOP/s over the repetitions' measurements
    peak_lib = {}  # threads -> the library that reached it
    for path in glob.glob(os.path.join(out, "sgemm_peak_*.txt")):
        for line in open(path):
            mm = re.match(r"peak threads=(\d+) gflops=([\d.]+)(?: lib=(\w+))?", line)
            if mm and float(mm.group(2)) > peak.get(int(mm.group(1)), 0.0):
                t, g = int(mm.group(1)), float(mm.group(2))
                peak[t], peak_lib[t] = g, mm.group(3) or "openblas"
    order = [n for n in ("encoder2", "mha", "attention23", "ms_mha", "bert12") if n in models]
    order += sorted(n for n in models if n not in order)
    present = set(os.path.basename(p).split("_")[0] + ":" + "_".join(
        os.path.basename(p).split("_")[1:-2]) for p in glob.glob(os.path.join(jdir, "*_*_*_*.*")))
    head = ["model", "threads", "check qkv / ORT", "qkv ms (min)", "ORT ms (min)", "qkv/ORT",
            "qkv GFLOP/s (% of sgemm peak)", "ORT GFLOP/s", "session qkv / ORT ms",
            "peak RSS qkv", "peak RSS ORT (Node before the model)"]
    order = [n for n in order if "qkv:" + n in present or "ort:" + n in present]
    rows, gemm, versions, reps_seen = [], set(), set(), set()
    for name in order:
        flops = models[name]["flops"]
        chk = _load(os.path.join(out, "check", name + ".json")) or {}
        chk_s = " / ".join(chk.get(rt, {}).get("verdict", "-") for rt in ("qkv", "ort"))
        for t in threads:
            q, o, qload = [], [], []
            qerr = oerr = None
            for p in sorted(glob.glob(os.path.join(jdir, "qkv_%s_%d_*.json" % (name, t)))):
                r = _load(p)
                reps_seen.add(p.rsplit("_", 1)[1].split(".")[0])
                if "error" in r:
                    qerr = r["error"]
                else:
                    q.append(r)
                    gemm.add(r.get("gemm_backend", "?"))
            for p in sorted(glob.glob(os.path.join(jdir, "qkv_%s_%d_*.load" % (name, t)))):
                with open(p) as f:
                    s = f.read().strip()
                if s:
                    qload.append(float(s))
            for p in sorted(glob.glob(os.path.join(jdir, "ort_%s_%d_*.json" % (name, t)))):
                r = _load(p)
                if "error" in r:
                    oerr = r["error"]
                else:
                    o.append(r)
                    versions.add(r.get("version", "?"))
            qm = min(r["latency_ms"]["median"] for r in q) if q else None
            om = min(r["latency_ms"]["median"] for r in o) if o else None
            row = [name, str(t), chk_s]
            qmin = min(r["latency_ms"]["min"] for r in q) if q else None
            omin = min(r["latency_ms"]["min"] for r in o) if o else None
            row.append("%.2f (%.2f)" % (qm, qmin) if qm
                       else "qkv failed: %s" % _cell(qerr or "no report"))
            row.append("%.2f (%.2f)" % (om, omin) if om
                       else "ORT refused: %s" % _cell(oerr or "no report"))
            row.append("%.2f" % (qm / om) if qm and om else "-")
            if qm:
                g = flops / (qm * 1e6)
                row.append("%.1f (%.0f%% of %.1f)" % (g, 100 * g / peak[t], peak[t])
                           if t in peak else "%.1f (no peak)" % g)
            else:
                row.append("-")
            row.append("%.1f" % (flops / (om * 1e6)) if om else "-")
            qs = "%.1f" % min(qload) if qload else "-"
            os_ = "%.1f" % min(r["session_create_ms"] for r in o) if o else "-"
            row.append("%s / %s" % (qs, os_))
            row.append(_mib(max(r["peak_rss_bytes"] for r in q)) if q else "-")
            row.append("%s (%s)" % (_mib(max(r["peak_rss_bytes"] for r in o)),
                                    _mib(min(r["rss_before_load_bytes"] for r in o)))
                       if o else "-")
            rows.append(row)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    table = "\n".join(lines)
    notes = [
        "qkv/ORT is the ratio of the latencies: below 1 qkv is faster; GFLOP/s counts only "
        "the MatMul/Gemm/attention products (bench/onnx_flops.py) at the median latency",
        "qkv GEMM backend: %s; extra qkv options (QKV_ARGS): %s; ONNX Runtime: "
        "onnxruntime-node %s (CPU execution provider)"
        % (", ".join(sorted(gemm)) or "?", os.environ.get("QKV_ARGS") or "none",
           ", ".join(sorted(versions)) or "?"),
        "environment that changes kernel choices: %s"
        % (", ".join("%s=%s" % (k, os.environ[k]) for k in TUNING_ENV if k in os.environ)
           or "none (the default install)"),
        "sgemm peak (the best of OpenBLAS cblas_sgemm and oneDNN dnnl_sgemm, of sizes "
        "512/1024/2048 and of the repetitions' measurements): %s"
        % (", ".join("%.1f GFLOP/s on %d thread(s) (%s)" % (peak[t], t, peak_lib[t])
                     for t in sorted(peak))
           or "not measured"),
        "repetitions: %d; times are the best (lowest) of the per-repetition medians, in "
        "parentheses the fastest single run; qkv/ORT and GFLOP/s use the medians; session "
        "creation is the lowest of the repetitions, RSS the highest" % len(reps_seen),
        "load before: %s" % load_before,
    ]
    load_path = os.path.join(out, "load.txt")
    if os.path.exists(load_path):
        notes += ["load at the start of %s" % ln.strip() for ln in open(load_path) if ln.strip()]
    notes += [
        "load after:  %s" % load_after,
    ]
    for name in order:
        chk = _load(os.path.join(out, "check", name + ".json")) or {}
        notes.append("check %s: %s" % (name, "; ".join(
            "%s %s (%s)" % (label, chk[rt]["verdict"], chk[rt]["detail"])
            for rt, label in (("qkv", "qkv"), ("ort", "ORT")) if rt in chk) or "not run"))
    flops_lines = ["| model | what | GFLOP per run |", "|---|---|---|"]
    for name in order:
        m = models[name]
        flops_lines.append("| %s | %s | %.3f |" % (name, m["description"], m["flops"] / 1e9))
    text = "\n".join(flops_lines) + "\n\n" + table + "\n\n" + "\n".join(
        "* " + n for n in notes) + "\n"
    print(text)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(text)


def main():
    a = sys.argv[1:]
    if len(a) == 3 and a[0] == "inputs":
        cmd_inputs(a[1], a[2])
    elif len(a) == 3 and a[0] == "check":
        cmd_check(a[1], a[2])
    elif len(a) >= 5 and a[0] == "table" and "--" in a:
        k = a.index("--")
        threads = [int(x) for x in a[2:k]]
        if len(a) != k + 3:
            sys.exit("vs_ort_report.py table: expected LOAD_BEFORE LOAD_AFTER after --")
        cmd_table(a[1], threads, a[k + 1], a[k + 2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
