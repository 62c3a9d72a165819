#!/usr/bin/env python3
"""Rewrite one CUDA source into C++ for the SIMT interpreter (src/simt/README.md).

Only the two constructs C++ cannot parse change; everything else compiles as it is against
src/simt/include (cuda_runtime.h, simt_kernel.h):

  kernel<<<grid, block[, shmem[, stream]]>>>(args)
      -> simt_launch("kernel", kernel, SIMT_SITE, grid, block[, shmem[, stream]])(args)
  extern __shared__ T name[];
      -> T *name = (T *)simt_dyn_shared();

A #line directive keeps compiler messages and the interpreter's barrier sites pointing at the .cu
file. Usage: cu2cc.py INPUT.cu OUTPUT.cc
"""
import re
import sys

LAUNCH = re.compile(r"([A-Za-z_]\w*(?:<[^<>;()]*>)?)\s*<<<(.*?)>>>\s*\(")
DYN_SHARED = re.compile(r"extern\s+__shared__\s+([A-Za-z_][\w\s]*?)\s+([A-Za-z_]\w*)\s*\[\s*\]\s*;")


def rewrite(text):
    def launch(m):
        name, cfg = m.group(1), m.group(2)
        return 'simt_launch("%s", %s, SIMT_SITE, %s)(' % (name, name, cfg)

    out, n = LAUNCH.subn(launch, text)
    if "<<<" in out:
        line = out[: out.index("<<<")].count("\n") + 1
        raise SystemExit("cu2cc: a launch at line %d is not of the form kernel<<<...>>>(" % line)
    out = DYN_SHARED.sub(lambda m: "%s *%s = (%s *)simt_dyn_shared();" % (m.group(1), m.group(2), m.group(1)), out)
    if re.search(r"extern\s+__shared__", out):
        raise SystemExit("cu2cc: an `extern __shared__` declaration not of the form T name[];")
    return out


def main():
    if len(sys.argv) != 3 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        sys.exit(0 if len(sys.argv) == 2 else 2)
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, encoding="utf-8") as f:
        text = f.read()
    body = rewrite(text)
    with open(dst, "w", encoding="utf-8") as f:
        f.write('#line 1 "%s"\n' % src)
        f.write(body)


if __name__ == "__main__":
    main()
