"""Shared by the start benchmarks (bench/jupyter-start.sh, bench/hapquery-start.sh): a kubectl watch
read as a stream of objects, and the table of the runs' median and max per step.

    python3 start_times.py report RESULTS TITLE DIGITS STEP...   (RESULTS: one JSON object a run)
"""
import json
import statistics
import subprocess
import sys


def watch(kubectl, args, on_object):
    """Runs `kubectl get ARGS --watch` and hands each object it prints to on_object, until that
    returns True or the watch ends."""
    proc = subprocess.Popen([kubectl, "get", *args, "--watch", "-o", "json", "--output-watch-events"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    # kubectl prints each event as indented JSON over many lines: decode as soon as one is whole.
    decoder, buf = json.JSONDecoder(), ""
    try:
        for line in proc.stdout:
            buf += line
            try:
                event, end = decoder.raw_decode(buf.lstrip())
            except ValueError:
                continue
            buf = buf.lstrip()[end:]
            if on_object(event.get("object", {})):
                return
    finally:
        proc.terminate()


def ready(status):
    """A pod's Ready condition is True."""
    return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))


def report(results, title, digits, steps):
    rows = [json.loads(line) for line in open(results)]
    print(f"{title} over {len(rows)} runs: median / max")
    for step in steps:
        values = [r[step] for r in rows if step in r]
        if values:
            print(f"  {step:<20} {statistics.median(values):6.{digits}f} / {max(values):6.{digits}f}")


if __name__ == "__main__" and sys.argv[1:2] == ["report"]:
    report(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:])
