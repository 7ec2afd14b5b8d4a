"""`python -m verify`: see verify.cli. Ctrl-C while the libraries load is one line, exit 130."""

import sys

try:
    from verify.cli import main
except KeyboardInterrupt:
    print("interrupted (Ctrl-C) while loading; nothing was run", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
