#!/usr/bin/env bash
# make demo: placeholder until cygnetd is wired (issue 6). It fails loudly rather than
# pretending: the daemon and the actor tree are not built yet.
set -euo pipefail
echo "cygnet demo: cygnetd is not assembled yet (issues 5 and 6 are open)." >&2
echo "What exists today: the wire layer, the kernel backends and the protocol core; run 'make test'." >&2
exit 1
