"""Tally the uprobe events of `scripts/copies-per-request.sh` (read from `perf script` on stdin).

    python3 copies_per_request.py BINARY REQUESTS TOP

Prints memmove calls and bytes per request, allocations per request, and the TOP memmove call
sites by bytes, each resolved through its inlined frames (`addr2line -i`).
"""

import collections
import re
import subprocess
import sys

FRAMES = 4  # inlined frames shown per call site


def text_delta(binary):
    """p_vaddr - p_offset of the executable segment: file offset -> address in the binary."""
    out = subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True).stdout
    for line in out.splitlines():
        fields = line.split()
        if fields[:1] == ["LOAD"] and "E" in fields[6:-1]:
            return int(fields[2], 16) - int(fields[1], 16)
    return 0


def where(binary, address):
    """The call site's inlined frames, innermost first: `function @file:line`."""
    out = subprocess.run(
        ["addr2line", "-f", "-i", "-C", "-e", binary, hex(address)],
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    frames = []
    for function, place in zip(out[0::2], out[1::2]):
        frames.append(f"{function[:70]} @{place.rsplit('/', 1)[-1]}")
    return " <- ".join(frames[:FRAMES])


def main():
    binary, requests, top = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    mapped = None
    calls, sizes = collections.Counter(), collections.Counter()
    allocations = 0
    for line in sys.stdin:
        if "PERF_RECORD_MMAP" in line and line.rstrip().endswith(binary) and "r-xp" in line:
            m = re.search(r"\[0x([0-9a-f]+)\(0x[0-9a-f]+\) @ 0x([0-9a-f]+)", line)
            if m:
                mapped = (int(m.group(1), 16), int(m.group(2), 16))
            continue
        m = re.search(r"tgcopy:memmove\d*:.*len=(\d+) ret=0x([0-9a-f]+)", line)
        if m:
            calls[int(m.group(2), 16)] += 1
            sizes[int(m.group(2), 16)] += int(m.group(1))
        elif "tgcopy:mi_" in line:
            allocations += 1
    if requests <= 0:
        sys.exit("no requests were served")
    print(
        f"memmove: {sum(calls.values()) / requests:.1f} calls, "
        f"{sum(sizes.values()) / requests:,.0f} bytes per request; "
        f"allocations: {allocations / requests:.1f} per request ({requests} requests)"
    )
    if mapped is None:
        print("(the binary's mapping was not recorded: call sites not resolved)")
        return
    start, offset = mapped
    delta = text_delta(binary)
    for ret, n in sorted(calls.items(), key=lambda kv: -sizes[kv[0]])[:top]:
        # A return address names the instruction after the call: step back into the call.
        site = ret - 1 - start + offset + delta
        print(f"{n / requests:6.2f} x {sizes[ret] / n:6.0f} B  {where(binary, site)}")


if __name__ == "__main__":
    main()
