"""Runs N `aurora2bq run --shard I/N` processes at once, as an Indexed Job's pods would, and
prints "seconds peak_rss_kib" (the largest of them). For scripts/bench.

    run_shards.py BINARY CONFIG N GROUP
"""
import resource
import subprocess
import sys
import time

binary, config, n, group = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
started = time.monotonic()
procs = [
    subprocess.Popen(
        [binary, "run", "--config", config, "--shard", f"{i}/{n}", "--shard-group", group],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    for i in range(n)
]
errors = [p.communicate()[1] for p in procs]
seconds = time.monotonic() - started
for p, e in zip(procs, errors):
    if p.returncode != 0:
        sys.stderr.write(e.decode(errors="replace")[-3000:])
        sys.exit(1)
print(f"{seconds:.2f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
